//! Host-side bindings of the four worlds of `wit/maestro-plugin.wit`. The shared interfaces
//! (`types`, `host`) are generated once, with the validator world, and reused by the others,
//! so one `host.log` implementation and one set of types serve every world.

#![allow(clippy::too_many_arguments)]

wasmtime::component::bindgen!({ path: "../../wit", world: "validator" });

pub mod feedback {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "status-feedback",
        with: { "maestro:plugin/types": super::maestro::plugin::types, "maestro:plugin/host": super::maestro::plugin::host },
    });
}

pub mod codec {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "codec",
        with: { "maestro:plugin/types": super::maestro::plugin::types, "maestro:plugin/host": super::maestro::plugin::host },
    });
}

pub mod hooks {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "reconcile-hook",
        with: { "maestro:plugin/types": super::maestro::plugin::types, "maestro:plugin/host": super::maestro::plugin::host },
    });
}
