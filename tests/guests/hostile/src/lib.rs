//! A misbehaving object. Every misbehaving route first stores the key `written:{route}`, so a test
//! can check that the failed event left nothing behind.
//!
//! - `POST /loop`: never returns.
//! - `POST /memory-bomb`: allocates until it cannot.
//! - `POST /recurse`: recurses without end.
//! - `POST /panic`: panics.
//! - `POST /huge-response?mb=N`: answers an N MiB body.
//! - `POST /flood?lines=N`: prints N lines to stdout.
//! - `GET /escape`: tries to read and write files, read the environment and open a socket;
//!   answers what worked as JSON.
//! - `GET /written/{route}`: whether `written:{route}` is stored.

use std::hint::black_box;

use opendo_sdk::{DurableObject, Method, Request, Response, Result, State, export_durable_object};

struct Hostile {
    state: State,
}

fn query_number(req: &Request, name: &str) -> usize {
    req.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

// Recursing without end is the point.
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: [u64; 16]) -> u64 {
    let pad = black_box(pad);
    recurse(depth + 1, pad) + pad[(depth % 16) as usize]
}

impl DurableObject for Hostile {
    fn new(state: State) -> Self {
        Hostile { state }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let path = req.path().to_string();
        if let Some(route) = path.strip_prefix("/written/") {
            return Response::ok(storage.get_bytes(&format!("written:{route}"))?.is_some().to_string());
        }
        if req.method() == Method::Get && path == "/escape" {
            let attempts = serde_json::json!({
                "read_file": std::fs::read_to_string("/etc/passwd").is_ok(),
                "write_file": std::fs::write("/tmp/opendo-hostile-escape", b"x").is_ok(),
                "list_dir": std::fs::read_dir("/").is_ok(),
                "env_vars": std::env::vars().count(),
                "env_path": std::env::var("PATH").is_ok(),
                "socket": std::net::TcpStream::connect("127.0.0.1:1").is_ok(),
                "resolve": std::net::ToSocketAddrs::to_socket_addrs("localhost:80").is_ok(),
            });
            return Response::from_json(&attempts);
        }
        storage.put_bytes(&format!("written:{}", path.trim_start_matches('/')), b"1")?;
        match path.as_str() {
            "/loop" => {
                let mut spins = 0u64;
                loop {
                    spins = black_box(spins.wrapping_add(1));
                }
            }
            "/memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "/recurse" => Response::ok(recurse(0, [1; 16]).to_string()),
            "/panic" => panic!("the hostile object panics"),
            "/huge-response" => Response::from_bytes(vec![b'x'; query_number(&req, "mb") << 20]),
            "/flood" => {
                for i in 0..query_number(&req, "lines") {
                    println!("flood line {i}");
                }
                Response::ok("flooded")
            }
            _ => Response::error("no such route", 404),
        }
    }
}

export_durable_object!(Hostile);
