"""A standard analytics client: reads a topic with confluent-kafka's AvroDeserializer, which
fetches each writer schema from the schema registry by the id in the Confluent framing.

usage: consume.py <bootstrap> <registry url> <topic> <partitions> <expected messages>
Prints one JSON line per message: the record's full name, conversation id and seq. Reads at
least the expected messages, then on until the topic has been quiet for two seconds, so that a
caller sees everything the topic holds rather than the first messages of each partition.
Exits non-zero when fewer than expected arrive within a minute.
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

bootstrap, registry, topic, partitions, expected = sys.argv[1:6]
deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
consumer = Consumer(
    {
        "bootstrap.servers": bootstrap,
        "group.id": "switchboard-analytics-test",
        "enable.auto.commit": False,
    }
)
consumer.assign(
    [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(int(partitions))]
)
seen = 0
deadline = time.monotonic() + 60
quiet = 0
while time.monotonic() < deadline:
    message = consumer.poll(1.0)
    if message is None:
        quiet += 1
        if seen >= int(expected) and quiet >= 2:
            break
        continue
    quiet = 0
    if message.error():
        print(f"consumer error: {message.error()}", file=sys.stderr)
        continue
    context = SerializationContext(message.topic(), MessageField.VALUE)
    value = deserializer(message.value(), context)
    envelope = value["envelope"]
    print(
        json.dumps(
            {
                "partition": message.partition(),
                "conversation_id": envelope["conversation_id"],
                "seq": envelope["seq"],
                "fields": sorted(value.keys()),
            }
        ),
        flush=True,
    )
    seen += 1
consumer.close()
sys.exit(0 if seen >= int(expected) else 1)
