fn main() {
    module_runtime::main::<haproxy_backend::HaproxyBackend>()
}
