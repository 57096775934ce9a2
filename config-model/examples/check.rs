fn main() {
    for p in std::env::args().skip(1) {
        match vpn_config::Config::load(&p) {
            Ok(c) => println!("{p}: ok\n{c:#?}"),
            Err(e) => println!("{e}"),
        }
    }
}
