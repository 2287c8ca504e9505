//! jail_set(2)/jail_get(2) parameter lists: name/value iovec pairs. Built
//! here without calling anything, so the encoding is tested on any OS.

use std::ffi::CString;

enum Value {
    Bytes(Vec<u8>),
    /// A boolean parameter given by name alone ("persist").
    Flag,
}

#[derive(Default)]
pub struct JailParams {
    params: Vec<(CString, Value)>,
}

impl JailParams {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, v: Value) -> &mut Self {
        self.params
            .push((CString::new(name).expect("static names"), v));
        self
    }

    /// A string parameter; the kernel wants the NUL counted.
    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.push(name, Value::Bytes(v))
    }

    pub fn int(&mut self, name: &str, value: i32) -> &mut Self {
        self.push(name, Value::Bytes(value.to_ne_bytes().to_vec()))
    }

    pub fn flag(&mut self, name: &str) -> &mut Self {
        self.push(name, Value::Flag)
    }

    /// Room for jail_get to write a value of up to `cap` bytes.
    pub fn out(&mut self, name: &str, cap: usize) -> &mut Self {
        self.push(name, Value::Bytes(vec![0; cap]))
    }

    /// The iovec array: name, value, name, value ... The pointers borrow
    /// `self`, which must stay put while the kernel uses them.
    pub fn iovecs(&mut self) -> Vec<libc::iovec> {
        let mut v = Vec::with_capacity(self.params.len() * 2);
        for (name, value) in &mut self.params {
            v.push(libc::iovec {
                iov_base: name.as_ptr() as *mut libc::c_void,
                iov_len: name.as_bytes_with_nul().len(),
            });
            v.push(match value {
                Value::Bytes(b) => libc::iovec {
                    iov_base: b.as_mut_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                },
                Value::Flag => libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
            });
        }
        v
    }

    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.params.iter().find_map(|(n, v)| match v {
            Value::Bytes(b) if n.as_bytes() == name.as_bytes() => Some(b.as_slice()),
            _ => None,
        })
    }

    pub fn get_int(&self, name: &str) -> Option<i32> {
        self.bytes(name)
            .and_then(|b| b.get(..4))
            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
    }

    pub fn get_string(&self, name: &str) -> Option<String> {
        self.bytes(name).map(|b| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_encoded_as_jail_set_wants() {
        let mut p = JailParams::new();
        p.string("name", "ifstress-ab12-h0")
            .int("vnet", crate::platform::freebsd::abi::JAIL_SYS_NEW)
            .flag("persist")
            .int("children.max", 64)
            .out("dying", 4);
        let iov = p.iovecs();
        assert_eq!(iov.len(), 10);
        // SAFETY: reading the buffers the params own.
        let s = |i: usize| {
            unsafe { std::slice::from_raw_parts(iov[i].iov_base as *const u8, iov[i].iov_len) }
                .to_vec()
        };
        assert_eq!(s(0), b"name\0");
        assert_eq!(s(1), b"ifstress-ab12-h0\0");
        assert_eq!(s(3), 1i32.to_ne_bytes());
        assert!(iov[5].iov_base.is_null() && iov[5].iov_len == 0);
        assert_eq!(s(6), b"children.max\0");
        assert_eq!(p.get_int("children.max"), Some(64));
        assert_eq!(p.get_string("name").as_deref(), Some("ifstress-ab12-h0"));
        assert_eq!(p.get_int("dying"), Some(0));
        assert_eq!(p.get_int("nope"), None);
    }
}
