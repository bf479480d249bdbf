fn main() {
    module_runtime::main::<sysctl_k8s::SysctlK8s>()
}
