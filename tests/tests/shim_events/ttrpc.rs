//! Just enough of ttrpc to call one task-service method of a shim directly
//! (ctr 1.6 has no `task update`): a request frame with a hand-encoded
//! protobuf body, and the status of the response.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited field (strings, bytes, messages).
fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads a varint at `*at`, advancing it.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of a message: (number, varint value or bytes).
fn fields(buf: &[u8]) -> Vec<(u64, Result<u64, Vec<u8>>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let Some(key) = read_varint(buf, &mut at) else {
            break;
        };
        match key & 7 {
            0 => match read_varint(buf, &mut at) {
                Some(v) => out.push((key >> 3, Ok(v))),
                None => break,
            },
            2 => {
                let Some(len) = read_varint(buf, &mut at) else {
                    break;
                };
                let end = at + len as usize;
                let Some(bytes) = buf.get(at..end) else { break };
                out.push((key >> 3, Err(bytes.to_vec())));
                at = end;
            }
            _ => break,
        }
    }
    out
}

/// The shim's ttrpc socket, from the `address` file in the task's bundle.
pub fn shim_socket(bundle: &Path) -> String {
    let address = std::fs::read_to_string(bundle.join("address")).expect("the shim's address");
    address.trim().trim_start_matches("unix://").to_string()
}

/// Calls `containerd.task.v2.Task/<method>` with the encoded `payload`;
/// Err holds the status code and message of a failed call.
pub fn call(socket: &str, method: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut request = Vec::new();
    field(&mut request, 1, b"containerd.task.v2.Task");
    field(&mut request, 2, method.as_bytes());
    field(&mut request, 3, payload);
    let mut frame = Vec::new();
    frame.extend_from_slice(&u32::try_from(request.len()).expect("size").to_be_bytes());
    frame.extend_from_slice(&1u32.to_be_bytes()); // stream id (odd: client)
    frame.push(1); // request
    frame.push(0); // flags
    frame.extend_from_slice(&request);
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect {socket}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    s.write_all(&frame).map_err(|e| format!("send: {e}"))?;
    let mut header = [0u8; 10];
    s.read_exact(&mut header)
        .map_err(|e| format!("response header: {e}"))?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("response body: {e}"))?;
    let mut result = Vec::new();
    for (number, value) in fields(&body) {
        match (number, value) {
            (1, Err(status)) => {
                let st = fields(&status);
                let code = st
                    .iter()
                    .find_map(|(n, v)| (*n == 1).then(|| v.clone().ok()).flatten())
                    .unwrap_or(0);
                let message = st
                    .iter()
                    .find_map(|(n, v)| (*n == 2).then(|| v.clone().err()).flatten())
                    .unwrap_or_default();
                if code != 0 {
                    return Err(format!(
                        "code {code}: {}",
                        String::from_utf8_lossy(&message)
                    ));
                }
            }
            (2, Err(payload)) => result = payload,
            _ => {}
        }
    }
    Ok(result)
}

/// UpdateTaskRequest{id, resources: Any(LinuxResources as JSON)}, the way
/// containerd sends it.
pub fn update_request(id: &str, resources_json: &str) -> Vec<u8> {
    let mut any = Vec::new();
    field(
        &mut any,
        1,
        b"types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
    );
    field(&mut any, 2, resources_json.as_bytes());
    let mut req = Vec::new();
    field(&mut req, 1, id.as_bytes());
    field(&mut req, 2, &any);
    req
}

#[test]
fn varints_and_fields_round_trip() {
    let mut buf = Vec::new();
    varint(&mut buf, 300);
    assert_eq!(buf, [0xac, 0x02]);
    let mut msg = Vec::new();
    varint(&mut msg, 1 << 3);
    varint(&mut msg, 5);
    field(&mut msg, 2, b"hi");
    assert_eq!(fields(&msg), vec![(1, Ok(5)), (2, Err(b"hi".to_vec()))]);
}
