//! The amp frame reader (`rpc::read_message`) on bytes a daemon could send: it never panics, and it
//! never allocates more than its cap plus a small constant, nor much more than the bytes that
//! arrived, whatever lengths the bytes claim. Its own binary, for the counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;

use pm2_port::sys::pm2_rpc::{self as rpc, MAX_ARGUMENT, MAX_MESSAGE};
use proptest::prelude::*;

/// Counts this thread's heap: bytes live now, their peak, and the largest single allocation (a
/// `realloc` counts as one of its new size). Thread-local, since tests run in parallel threads.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn grew(from: usize, to: usize) {
    let _ = LIVE.try_with(|live| {
        let now = (live.get() + to).saturating_sub(from);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        let _ = LARGEST.try_with(|l| l.set(l.get().max(to)));
    });
}

fn freed(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(0, layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(0, layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freed(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(layout.size(), new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What one call allocated: its peak of live bytes above where it started, and its largest block.
#[derive(Debug)]
struct Heap {
    peak: usize,
    largest: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Heap) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    LARGEST.with(|l| l.set(0));
    let out = f();
    let heap = Heap {
        peak: PEAK.with(Cell::get) - base,
        largest: LARGEST.with(Cell::get),
    };
    (out, heap)
}

/// What the reader may take beyond the bytes themselves: error messages, the argument list.
const SLACK: usize = 64 << 10;

/// Read one message from `r`, whose bytes number `arrived` at most, and check the bounds.
fn read_within_bounds(r: &mut impl Read, arrived: usize) -> std::io::Result<Vec<Vec<u8>>> {
    let (result, heap) = measure(|| rpc::read_message(r));
    assert!(
        heap.largest <= MAX_MESSAGE + SLACK,
        "over the cap: {heap:?}"
    );
    assert!(heap.peak <= MAX_MESSAGE + SLACK, "over the cap: {heap:?}");
    // Never ahead of what arrived: doubling as bytes come in, at most twice them.
    assert!(
        heap.peak <= 2 * arrived + SLACK,
        "{heap:?} for {arrived} bytes"
    );
    result
}

/// A header: version 1, `lens.len()` arguments, the first length of each given.
fn header(lens: &[u32]) -> Vec<u8> {
    let mut out = vec![0x10 | lens.len() as u8];
    for len in lens {
        out.extend_from_slice(&len.to_be_bytes());
    }
    out
}

/// A length worth claiming: small, around the caps, or anything up to 4 GiB.
fn claimed() -> impl Strategy<Value = u32> {
    prop_oneof![
        0..64u32,
        Just(u32::MAX),
        Just(MAX_ARGUMENT as u32),
        Just(MAX_ARGUMENT as u32 + 1),
        Just((MAX_MESSAGE / 2) as u32 + 1),
        any::<u32>(),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_within_bounds(&mut bytes.as_slice(), bytes.len());
    }

    #[test]
    fn a_header_then_arbitrary_bytes(
        head in proptest::collection::vec(any::<u8>(), 0..64),
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        // Version 1 and a random count first, so that lengths are read.
        let mut bytes = vec![0x10 | (head.first().copied().unwrap_or(0) & 0xf)];
        bytes.extend(&head);
        bytes.extend(&tail);
        let _ = read_within_bounds(&mut bytes.as_slice(), bytes.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Lengths that claim up to 4 GiB, each followed by its bytes until `available` run out (up
    /// to twice the cap), generated as they are read rather than held.
    #[test]
    fn claimed_lengths_and_a_stream_of_bytes(
        lens in proptest::collection::vec(claimed(), 0..16),
        available in prop_oneof![0..4096usize, Just(MAX_MESSAGE), Just(2 * MAX_MESSAGE)],
    ) {
        let mut reader: Box<dyn Read> = Box::new(std::io::Cursor::new(vec![0x10 | lens.len() as u8]));
        let mut arrived = 1;
        let mut budget = available;
        for &len in &lens {
            let take = budget.min(len as usize);
            reader = Box::new(
                reader
                    .chain(std::io::Cursor::new(len.to_be_bytes()))
                    .chain(std::io::repeat(b'x').take(take as u64)),
            );
            arrived += 4 + take;
            budget -= take;
        }
        let result = read_within_bounds(&mut reader, arrived);
        let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
        let fits = lens.iter().all(|&l| l as usize <= MAX_ARGUMENT) && total <= MAX_MESSAGE as u64;
        prop_assert_eq!(result.is_ok(), fits && total as usize <= available);
    }
}

#[test]
fn a_4_gib_claim_is_refused_before_its_bytes_are_read() {
    let mut bytes = header(&[u32::MAX]);
    bytes.extend(std::iter::repeat_n(b'x', 1 << 20));
    let mut rest = bytes.as_slice();
    let err = read_within_bounds(&mut rest, 1 << 20).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let text = err.to_string();
    assert!(text.contains("4294967295 bytes"), "{text}");
    assert!(text.contains("cap of 64 MiB"), "{text}");
    assert_eq!(rest.len(), 1 << 20, "the claimed bytes were read");
}

/// `[list, id]` with a list of `len` bytes: 9 bytes of header besides.
fn list_and_id(len: u32) -> impl Read {
    std::io::Cursor::new(header(&[len, 0])[..5].to_vec())
        .chain(std::io::repeat(b'x').take(u64::from(len)))
        .chain(std::io::Cursor::new(5u32.to_be_bytes()))
        .chain(std::io::Cursor::new(b"s:1:0"))
}

#[test]
fn a_message_of_exactly_the_cap_is_read_and_one_byte_more_is_not() {
    let len = (MAX_MESSAGE - 5) as u32;
    let args = read_within_bounds(&mut list_and_id(len), MAX_MESSAGE + 9).unwrap();
    assert_eq!(args[0].len(), len as usize);
    assert_eq!(args[1], b"s:1:0");
    let Err(err) = read_within_bounds(&mut list_and_id(len + 1), MAX_MESSAGE + 10) else {
        panic!("a message one byte over the cap was read");
    };
    assert!(err.to_string().contains("cap of 64 MiB"), "{err}");
}
