fn main() {
    module_runtime::main::<runtime_probe::RuntimeProbe>()
}
