//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0), §2.1: leaf hash
//! `SHA-256(0x00 ‖ leaf)`, node hash `SHA-256(0x01 ‖ left ‖ right)`, split at
//! the largest power of two below the size. Inclusion and consistency proofs
//! are made from the leaf hashes and verified with the algorithms of §2.1.3.2
//! and §2.1.4.2, so a third party can check them with any RFC 9162 library.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf's bytes.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

fn split(n: usize) -> usize {
    // The largest power of two strictly below n (n >= 2).
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root of the tree over these leaf hashes (MTH).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The size.
        size: u64,
    },
    /// The old tree is larger than the new one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldLargerThanNew {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
    /// The proof has more hashes than the sizes allow.
    #[error("the proof has more hashes than a proof for these sizes can have")]
    TooLong,
    /// The proof has fewer hashes than the sizes need.
    #[error("the proof has fewer hashes than a proof for these sizes needs")]
    TooShort,
    /// The proof is well-formed but gives another root.
    #[error("the proof leads to another root hash")]
    RootMismatch,
    /// A consistency proof from the empty tree, or between equal sizes, must be empty.
    #[error("a consistency proof from size {old} to {new} must be empty")]
    NotEmpty {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
}

/// The inclusion proof (audit path) of leaf `index` in the tree over `leaves`.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if index >= leaves.len() {
        return Err(ProofError::IndexOutOfRange { index: index as u64, size: leaves.len() as u64 });
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Ok(out)
}

/// Checks that `leaf` (a leaf hash) is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], expected_root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::TooLong);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::TooShort);
    }
    if &r != expected_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The consistency proof between the tree of the first `old` leaves and the tree over all `leaves`.
pub fn consistency_proof(old: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let new = leaves.len();
    if old > new {
        return Err(ProofError::OldLargerThanNew { old: old as u64, new: new as u64 });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    fn sub(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !complete {
                out.push(root(d));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            sub(m, &d[..k], complete, out);
            out.push(root(&d[k..]));
        } else {
            sub(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    sub(old, leaves, true, &mut out);
    Ok(out)
}

/// Checks that the tree of size `old` with `old_root` is a prefix of the tree of
/// size `new` with `new_root`.
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OldLargerThanNew { old, new });
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty { old, new });
        }
        return if old == 0 || old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::TooShort);
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::TooLong);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::TooShort);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    /// Sizes 1–17 and around the powers of two up to 129.
    fn sizes() -> Vec<usize> {
        let mut s: Vec<usize> = (1..=17).collect();
        for p in [31, 32, 33, 63, 64, 65, 127, 128, 129] {
            s.push(p);
        }
        s
    }

    #[test]
    fn rfc6962_reference_roots() {
        // The test vectors of the CT reference implementation (merkle_tree_test.cc):
        // leaves are these byte strings, roots for sizes 1..8.
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
        ];
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Hash> = inputs.iter().map(|l| leaf_hash(l)).collect();
        for (n, want) in expected.iter().enumerate() {
            let got: String = root(&hashes[..=n]).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&got, want, "root of the first {} leaves", n + 1);
        }
        let empty: String = empty_root().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn every_inclusion_proof_verifies_and_edge_cases_fail() {
        for n in sizes() {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let proof = inclusion_proof(i, &l).unwrap();
                assert_eq!(verify_inclusion(i as u64, n as u64, &l[i], &proof, &r), Ok(()), "leaf {i} of {n}");
                // Another leaf at this index.
                let other = leaf_hash(b"not in the tree");
                assert_eq!(verify_inclusion(i as u64, n as u64, &other, &proof, &r), Err(ProofError::RootMismatch));
                // One hash too many, one too few.
                let mut long = proof.clone();
                long.push(r);
                assert!(verify_inclusion(i as u64, n as u64, &l[i], &long, &r).is_err(), "too long, leaf {i} of {n}");
                if !proof.is_empty() {
                    let short = &proof[..proof.len() - 1];
                    assert!(verify_inclusion(i as u64, n as u64, &l[i], short, &r).is_err(), "too short, leaf {i} of {n}");
                }
                // A wrong tree size: the proof does not show inclusion in the tree of
                // that size. (The size itself is bound by the signed checkpoint.)
                let bigger = leaves(n + 1);
                assert!(verify_inclusion(i as u64, n as u64 + 1, &l[i], &proof, &root(&bigger)).is_err(), "size+1, leaf {i} of {n}");
                if i + 1 < n {
                    assert!(
                        verify_inclusion(i as u64, n as u64 - 1, &l[i], &proof, &root(&l[..n - 1])).is_err(),
                        "size-1, leaf {i} of {n}"
                    );
                }
            }
            // Index at or past the size.
            assert_eq!(
                verify_inclusion(n as u64, n as u64, &l[0], &[], &r),
                Err(ProofError::IndexOutOfRange { index: n as u64, size: n as u64 })
            );
            assert!(inclusion_proof(n, &l).is_err());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_edge_cases_fail() {
        for n in sizes() {
            let l = leaves(n);
            let new_root = root(&l);
            for m in 1..=n {
                let old_root = root(&l[..m]);
                let proof = consistency_proof(m, &l).unwrap();
                assert_eq!(verify_consistency(m as u64, n as u64, &old_root, &new_root, &proof), Ok(()), "{m} -> {n}");
                if m == n {
                    // Equal sizes: empty proof, equal roots; anything else fails.
                    assert!(proof.is_empty());
                    assert_eq!(
                        verify_consistency(m as u64, n as u64, &old_root, &new_root, &[old_root]),
                        Err(ProofError::NotEmpty { old: m as u64, new: n as u64 })
                    );
                    continue;
                }
                let mut long = proof.clone();
                long.push(new_root);
                assert!(verify_consistency(m as u64, n as u64, &old_root, &new_root, &long).is_err(), "too long {m} -> {n}");
                let short = &proof[..proof.len() - 1];
                assert!(verify_consistency(m as u64, n as u64, &old_root, &new_root, short).is_err(), "too short {m} -> {n}");
                let wrong = leaf_hash(b"forked");
                assert!(verify_consistency(m as u64, n as u64, &wrong, &new_root, &proof).is_err(), "wrong old root {m} -> {n}");
                assert!(verify_consistency(m as u64, n as u64, &old_root, &wrong, &proof).is_err(), "wrong new root {m} -> {n}");
            }
            // Old larger than new.
            assert_eq!(
                verify_consistency(n as u64 + 1, n as u64, &new_root, &new_root, &[]),
                Err(ProofError::OldLargerThanNew { old: n as u64 + 1, new: n as u64 })
            );
            assert!(consistency_proof(n + 1, &l).is_err());
        }
    }

    #[test]
    fn a_changed_leaf_changes_the_root() {
        let mut l = leaves(13);
        let before = root(&l);
        l[7] = leaf_hash(b"tampered");
        assert_ne!(root(&l), before);
    }
}
