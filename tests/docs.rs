//! The product documents itself: README and docs/ link only to files in the repository.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every markdown document of the front door and the reference.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    let dir = std::fs::read_dir(root().join("docs")).expect("docs/ exists");
    for entry in dir.flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            docs.push(entry.path());
        }
    }
    docs
}

/// The targets of the `[text](target)` links of a markdown text.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find(')') {
            out.push(rest[..j].to_owned());
            rest = &rest[j..];
        }
    }
    out
}

#[test]
fn every_link_of_readme_and_docs_names_a_file_of_the_repository() {
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("readable");
        let dir = doc.parent().unwrap_or(Path::new("."));
        for target in links(&text) {
            let file = target.split('#').next().unwrap_or_default();
            if file.is_empty() || target.starts_with("http://127.0.0.1") {
                continue;
            }
            assert!(
                !file.contains("://"),
                "{}: links outside the repository: {target}",
                doc.display()
            );
            let path = dir.join(file);
            assert!(
                path.exists(),
                "{}: link target {target} does not exist",
                doc.display()
            );
            let inside = path
                .canonicalize()
                .map(|p| p.starts_with(root().canonicalize().unwrap_or_default()))
                .unwrap_or(false);
            assert!(
                inside,
                "{}: {target} is outside the repository",
                doc.display()
            );
        }
    }
}

#[test]
fn the_readme_names_the_two_commands_and_where_to_read_on() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(readme.contains("cargo run --release -- demo"));
    assert!(readme.contains("bash scripts/test"));
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("scripts/test"),
        "CI runs exactly README's test command"
    );
    for doc in ["docs/rules.md", "docs/contract.md", "docs/architecture.md"] {
        assert!(readme.contains(doc), "README does not point to {doc}");
    }
    assert!(
        !readme.contains("../shared"),
        "README points outside the repository"
    );
}
