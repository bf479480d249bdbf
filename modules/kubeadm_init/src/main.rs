fn main() {
    module_runtime::main::<kubeadm_init::KubeadmInit>()
}
