//! Compiles the replication protocol (proto/replication.proto) with tonic,
//! and the long double arithmetic of INCRBYFLOAT (src/util/longdouble.c).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=src/util/longdouble.c");
    cc::Build::new()
        .file("src/util/longdouble.c")
        .warnings(true)
        .compile("jcache_longdouble");
    println!("cargo:rerun-if-changed=proto/replication.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Every bytes field as `Bytes`: encoding clones references instead
        // of copying keys and values, and decoding slices the received buffer.
        .bytes(".jcache.repl")
        .compile_protos(&["proto/replication.proto"], &["proto"])?;
    Ok(())
}
