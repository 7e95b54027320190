fn main() {
    let path = std::env::args().nth(1).unwrap();
    let src = std::fs::read_to_string(&path).unwrap();
    let v = statemachine_dsl::check(&src);
    let f = statemachine_dsl::SourceFile::new(&path, &src);
    print!("{}", f.render_all(&v.diagnostics));
    println!("model: {}", v.model.is_some());
}
