fn main() {
    module_runtime::main::<containerd_config::ContainerdConfig>()
}
