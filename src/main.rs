/// The system allocator with a reserve it gives back on the first failed
/// allocation, so a run out of memory still tears down and reports
/// (`memory`).
#[global_allocator]
static ALLOCATOR: ifstress::memory::Allocator = ifstress::memory::Allocator;

fn main() {
    std::process::exit(ifstress::cli::main());
}
