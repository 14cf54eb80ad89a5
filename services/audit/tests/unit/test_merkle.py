"""RFC 6962 hashing and proofs against the certificate-transparency reference vectors.

The vectors (leaf inputs, every complete-subtree hash, roots for sizes 0..8, inclusion and
consistency proofs) are the ones published with the certificate-transparency Merkle tree
code (transparency-dev/merkle ``testonly`` and ``proof`` packages), written out here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_audit.errors import ProofError
from symbi_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_nodes,
    root_at,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# Hashes of every complete subtree of the 8-leaf tree, by level then index.
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# Roots by tree size 0..8.
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (leaf index, tree size, proof)
INCLUSION_PROOFS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# (old size, new size, proof)
CONSISTENCY_PROOFS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


class DictReader:
    """Complete-subtree hashes from a dict; records what was read."""

    def __init__(self, nodes: dict[NodeId, bytes]) -> None:
        self.nodes = nodes
        self.reads: list[NodeId] = []

    def node_hashes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.reads.extend(ids)
        return {i: self.nodes[i] for i in ids}


def build(leaves: Sequence[bytes]) -> tuple[CompactRange, DictReader]:
    compact = CompactRange()
    nodes: dict[NodeId, bytes] = {}
    for leaf in leaves:
        nodes.update(compact.append(leaf))
    return compact, DictReader(nodes)


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH straight from the RFC 6962 definition (recursive)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


REFERENCE_LEAVES = [leaf_hash(x) for x in LEAF_INPUTS]


def test_leaf_and_empty_hashes_match_rfc() -> None:
    assert EMPTY_ROOT.hex() == ROOTS[0]
    assert leaf_hash(b"").hex() == ROOTS[1]


def test_every_complete_subtree_hash_matches_the_vectors() -> None:
    _, reader = build(REFERENCE_LEAVES)
    for level, row in enumerate(NODE_HASHES):
        for index, expected in enumerate(row):
            assert reader.nodes[NodeId(level, index)].hex() == expected, (level, index)
    assert len(reader.nodes) == sum(len(row) for row in NODE_HASHES)


@pytest.mark.parametrize("size", range(9))
def test_roots_for_every_size_match_the_vectors(size: int) -> None:
    compact, _ = build(REFERENCE_LEAVES[:size])
    assert compact.root().hex() == ROOTS[size]
    assert root_of(REFERENCE_LEAVES[:size]).hex() == ROOTS[size]
    # And from the persisted nodes of the full tree, for every historical size.
    _, full = build(REFERENCE_LEAVES)
    assert root_at(size, full).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proofs_match_the_vectors(index: int, size: int, proof: list[str]) -> None:
    _, reader = build(REFERENCE_LEAVES)
    got = inclusion_proof(index, size, reader)
    assert [p.hex() for p in got] == proof
    verify_inclusion(REFERENCE_LEAVES[index], index, size, got, h(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proofs_match_the_vectors(old: int, new: int, proof: list[str]) -> None:
    _, reader = build(REFERENCE_LEAVES)
    got = consistency_proof(old, new, reader)
    assert [p.hex() for p in got] == proof
    verify_consistency(old, new, got, h(ROOTS[old]), h(ROOTS[new]))


def _fails(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return True
    return False


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("index-1", index - 1, size, proof, root, leaf),
        ("index+1", index + 1, size, proof, root, leaf),
        ("index^2", index ^ 2, size, proof, root, leaf),
        ("size*2", index, size * 2, proof, root, leaf),
        ("size/2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((f"flipped proof[{i}]", index, size, bad, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS[1:])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    good = [h(p) for p in proof]
    accepted: list[str] = []
    for name, i, n, p, root, leaf in _inclusion_probes(
        index, size, good, h(ROOTS[size]), REFERENCE_LEAVES[index]
    ):
        if not _fails(lambda: verify_inclusion(leaf, i, n, p, root)):  # noqa: B023
            accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS[1:])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[str]) -> None:
    good = [h(p) for p in proof]
    r1, r2 = h(ROOTS[old]), h(ROOTS[new])
    probes = [
        ("old-1", old - 1, new, good, r1, r2),
        ("old+1", old + 1, new, good, r1, r2),
        ("old^2", old ^ 2, new, good, r1, r2),
        ("new*2", old, new * 2, good, r1, r2),
        ("new/2", old, new // 2, good, r1, r2),
        ("wrong root1", old, new, good, SOME_HASH, r2),
        ("wrong root2", old, new, good, r1, SOME_HASH),
        ("swapped roots", old, new, good, r2, r1),
        ("empty proof", old, new, [], r1, r2),
        ("trailing garbage", old, new, [*good, b""], r1, r2),
        ("trailing root1", old, new, [*good, r1], r1, r2),
        ("trailing root2", old, new, [*good, r2], r1, r2),
        ("preceding garbage", old, new, [b"", *good], r1, r2),
        ("preceding root1", old, new, [r1, *good], r1, r2),
        ("preceding root2", old, new, [r2, *good], r1, r2),
        ("preceding proof[0]", old, new, [good[0], *good], r1, r2),
        ("truncated", old, new, good[:-1], r1, r2),
    ]
    for i in range(len(good)):
        bad = list(good)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((f"flipped proof[{i}]", old, new, bad, r1, r2))
    accepted: list[str] = []
    for name, m, n, p, a, b in probes:
        if not _fails(lambda: verify_consistency(m, n, p, a, b)):  # noqa: B023
            accepted.append(name)
    assert accepted == []


def test_trivial_consistency_cases() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 5, [], EMPTY_ROOT, h(ROOTS[5]))
    verify_consistency(3, 3, [], h(ROOTS[3]), h(ROOTS[3]))
    with pytest.raises(ProofError):
        verify_consistency(3, 3, [], h(ROOTS[3]), h(ROOTS[4]))
    with pytest.raises(ProofError):
        verify_consistency(1, 1, [EMPTY_ROOT], h(ROOTS[1]), h(ROOTS[1]))
    with pytest.raises(ProofError):
        verify_consistency(2, 1, [], h(ROOTS[2]), h(ROOTS[1]))


def test_inclusion_edge_cases() -> None:
    single = leaf_hash(b"data")
    verify_inclusion(single, 0, 1, [], single)
    for index, size in [(0, 0), (1, 0), (2, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(b"short", 0, 1, [])


def test_range_nodes_tile_aligned_ranges() -> None:
    assert range_nodes(0, 7) == [NodeId(2, 0), NodeId(1, 2), NodeId(0, 6)]
    assert range_nodes(4, 8) == [NodeId(2, 1)]
    assert range_nodes(4, 7) == [NodeId(1, 2), NodeId(0, 6)]
    assert range_nodes(3, 3) == []
    assert range_nodes(6, 12) == [NodeId(1, 3), NodeId(2, 2)]


def test_compact_range_reports_complete_subtrees_and_rejects_bad_shapes() -> None:
    compact = CompactRange()
    created = [compact.append(leaf) for leaf in REFERENCE_LEAVES[:4]]
    assert [ids for ids, _ in created[3]] == [NodeId(0, 3), NodeId(1, 1), NodeId(2, 0)]
    assert CompactRange(4, compact.peaks).root().hex() == ROOTS[4]
    with pytest.raises(Exception, match="peaks"):
        CompactRange(3, compact.peaks)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_generated_proofs_verify_for_random_trees(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    _, reader = build(leaves)
    root = reference_root(leaves)
    assert root_at(size, reader) == root
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, size, reader)
    assert len(proof) <= size.bit_length()
    verify_inclusion(leaves[index], index, size, proof, root)
    old = data.draw(st.integers(min_value=0, max_value=size))
    old_root = reference_root(leaves[:old])
    assert root_at(old, reader) == old_root
    verify_consistency(old, size, consistency_proof(old, size, reader), old_root, root)
    if 0 < old < size:
        with pytest.raises(ProofError):
            verify_consistency(old, size, consistency_proof(old, size, reader), SOME_HASH, root)
