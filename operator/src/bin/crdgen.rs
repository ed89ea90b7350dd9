//! Prints the LoadTest CRD as YAML (`make generate` writes it to `crds/` and the chart).

fn main() {
    match floodgate_operator::crd::crd_yaml() {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("error: cannot render the CRD: {e}");
            std::process::exit(1);
        }
    }
}
