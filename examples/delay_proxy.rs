//! A TCP proxy that delays every byte sent towards the upstream by a fixed
//! time (like `tc netem delay` on one interface), for scripts/bench-tiered.sh
//! on kernels without netem. Pipelining is preserved: each chunk is stamped
//! when read and written once its time has come, while later chunks are
//! already being read. Threads and `std::thread::sleep` keep the delay precise
//! to tens of microseconds.
//!
//! Usage: delay_proxy LISTEN_ADDR UPSTREAM_ADDR DELAY_US

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: delay_proxy LISTEN_ADDR UPSTREAM_ADDR DELAY_US");
        std::process::exit(2);
    }
    let listener = TcpListener::bind(&args[1]).expect("bind");
    let upstream = args[2].clone();
    let delay = Duration::from_micros(args[3].parse().expect("DELAY_US"));
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(&upstream) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        // Replies: straight through.
        let (mut c_w, mut s_r) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut s_r, &mut c_w);
            let _ = c_w.shutdown(Shutdown::Both);
        });
        // Requests: stamped, then written when due.
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let mut c_r = client;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match c_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let mut s_w = server;
        std::thread::spawn(move || {
            while let Ok((due, data)) = rx.recv() {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if s_w.write_all(&data).is_err() {
                    break;
                }
            }
            let _ = s_w.shutdown(Shutdown::Both);
        });
    }
}
