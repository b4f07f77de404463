//! The allocator's own numbers (jemalloc, which `main.rs` installs):
//! MEMORY STATS / MALLOC-STATS / PURGE and INFO memory read them here.

use std::ffi::{c_char, c_void, CStr};

use tikv_jemalloc_sys as je;

/// allocated, active, resident, retained, mapped (bytes), refreshed now.
#[derive(Default, Clone, Copy)]
pub struct AllocStats {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub retained: u64,
    pub mapped: u64,
}

fn read_usize(name: &CStr) -> u64 {
    let mut v: usize = 0;
    let mut len = std::mem::size_of::<usize>();
    // SAFETY: `name` is NUL-terminated; `v` and `len` describe a usize,
    // which is what the stats.* controls write.
    let rc = unsafe {
        je::mallctl(
            name.as_ptr(),
            &mut v as *mut usize as *mut c_void,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 {
        v as u64
    } else {
        0
    }
}

/// Refreshes jemalloc's statistics (the `epoch` control) and reads them.
pub fn stats() -> AllocStats {
    let mut epoch: u64 = 1;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: writing a u64 to "epoch" refreshes the cached statistics.
    unsafe {
        je::mallctl(
            c"epoch".as_ptr(),
            &mut epoch as *mut u64 as *mut c_void,
            &mut len,
            &mut epoch as *mut u64 as *mut c_void,
            std::mem::size_of::<u64>(),
        );
    }
    AllocStats {
        allocated: read_usize(c"stats.allocated"),
        active: read_usize(c"stats.active"),
        resident: read_usize(c"stats.resident"),
        retained: read_usize(c"stats.retained"),
        mapped: read_usize(c"stats.mapped"),
    }
}

/// jemalloc's malloc_stats_print text (MEMORY MALLOC-STATS).
pub fn stats_text() -> String {
    unsafe extern "C" fn write(opaque: *mut c_void, s: *const c_char) {
        // SAFETY: `opaque` is the String below; `s` a NUL-terminated text.
        let out = unsafe { &mut *(opaque as *mut String) };
        out.push_str(&unsafe { CStr::from_ptr(s) }.to_string_lossy());
    }
    let mut out = String::new();
    // SAFETY: the callback writes only into `out`, alive for the call.
    unsafe {
        je::malloc_stats_print(
            Some(write),
            &mut out as *mut String as *mut c_void,
            std::ptr::null(),
        );
    }
    out
}

/// Returns dirty pages of every arena to the system (MEMORY PURGE).
pub fn purge() {
    // MALLCTL_ARENAS_ALL is 4096 in jemalloc 5.
    // SAFETY: a void control; no old or new value.
    unsafe {
        je::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}
