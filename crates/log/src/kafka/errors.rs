//! librdkafka errors as `LogError`s, split into retriable and fatal.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::LogError;

/// Codes that say "try again": the cluster is moving, busy or unreachable.
fn retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::QueueFull
            | C::MessageTimedOut
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::NetworkException
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::RebalanceInProgress
            | C::IllegalGeneration
            | C::UnknownMemberId
    )
}

pub(crate) fn kafka(op: &'static str, err: KafkaError) -> LogError {
    let retriable = err.rdkafka_error_code().is_some_and(retriable);
    LogError::Kafka {
        op,
        message: err.to_string(),
        retriable,
    }
}

/// A per-topic error code of an admin request, naming the topic.
pub(crate) fn topic_error(op: &'static str, topic: &str, code: RDKafkaErrorCode) -> LogError {
    LogError::Kafka {
        op,
        message: format!("topic {topic}: {code}"),
        retriable: retriable(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_retriable_and_others_fatal() {
        let timeout = kafka(
            "produce",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        );
        assert!(timeout.is_retriable(), "{timeout}");
        let too_large = kafka(
            "produce",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        );
        assert!(!too_large.is_retriable(), "{too_large}");
        let denied = kafka(
            "produce",
            KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
        );
        assert!(!denied.is_retriable(), "{denied}");
    }
}
