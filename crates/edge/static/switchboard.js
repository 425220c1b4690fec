// protocol v1 client: see docs/protocol.md
