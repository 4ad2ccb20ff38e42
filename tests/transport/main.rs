//! The transport end to end: the wire format against Maestro's samples, and a hub and test
//! agents talking through the real Mosquitto (127.0.0.1:1883) and the embedded broker.
//! Every test uses its own topic source, so runs on one broker never see each other.

mod bad_input;
mod conformance;
mod delivery;
mod policies;
mod resync;
mod security;
