//! The web console (`mqconsole`): watch and operate a cluster in a browser. Not built yet.
