fn main() {
    std::process::exit(ifstress::cli::main());
}
