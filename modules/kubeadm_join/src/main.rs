fn main() {
    module_runtime::main::<kubeadm_join::KubeadmJoin>()
}
