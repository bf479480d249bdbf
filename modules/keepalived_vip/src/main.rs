fn main() {
    module_runtime::main::<keepalived_vip::KeepalivedVip>()
}
