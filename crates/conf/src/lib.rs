//! Conf loading shared by the binaries: Java `.properties` files with RocketMQ keys, typed and validated.
