//! Compiles the replication protocol (proto/replication.proto) with tonic.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/replication.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".jcache.repl.Batch.encoded")
        .compile_protos(&["proto/replication.proto"], &["proto"])?;
    Ok(())
}
