# ruff: noqa: E501  (a table of sha256 digests, one per line)
"""Golden vectors of algorithm v1: sha256 of the bytes of reference specs.

CHANGING THESE MEANS A NEW ALGORITHM VERSION (v2, ...), NEVER AN EDIT OF v1. A released
version's bytes never change (docs/api.md, "The bytes"); if a change to the engine makes
a digest below differ, the change is wrong for v1, whatever else it fixes.

The specs (``golden_specs.py``) cover every registry initializer and every dtype
(float32, float16, bfloat16, float64, and int64 through batch_norm's
``num_batches_tracked``). Each is pinned per tensor, as the sha256 of its data section,
and as the sha256 of the whole file, header included: the header carries the spec and
no package version, so the file's bytes are a function of (algorithm, spec, selection)
and these digests hold from release to release. The
orthogonal initializer is bitwise only on one platform (LAPACK's QR), so its values are
pinned to 1e-12 relative instead.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from golden_specs import (
    GOLDEN_SPECS,
    ORTHOGONAL_SPECS,
    digests,
    orthogonal_values,
    plan_of,
)
from weightinit.core import REGISTRY, write_file

GOLDEN: dict[str, dict[str, str]] = {
    "every_initializer_float32": {
        "fc.weight": "663a2710c0644af56eb815c3b691e53e935d91632e2a68464cf45daf85245ebb",
        "fc.bias": "83c93f74dfc72c86bff0520720a55382b3a59b464a1ebcaf8d3a95c709bfeedf",
        "conv.weight": "315b9c449657b183658951cedada5117eebca149466230d9b029902a2dad3542",
        "conv.bias": "14f9ddbeb92ee038fcfd44efc0d27f5e5a66ff36dc90fc9507f795ae78fc4960",
        "up.weight": "125374e142500b8e507339412513997e05cf2829f74c2ab193acc7de8c23d717",
        "up.bias": "0b02f713332fe8999ceb55754d52b2be3d2f5bcc742e987d2ff3d2d68835c5e4",
        "blocks.0.inner.0.proj.weight": "dd6c4659186f1412213a3a8df3aaeff85e1406e42f32fb903535ad61cf26ebc6",
        "blocks.0.inner.0.proj.bias": "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925",
        "blocks.0.inner.1.proj.weight": "446abafda30773af8cf2ffcbed9e9d8b95d54fe693e6cb7de529aa26e6fc19fa",
        "blocks.0.inner.1.proj.bias": "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925",
        "blocks.1.inner.0.proj.weight": "031403f625ca6a6a01de1a46a05c7f3b4f75e1b6dfed9a08212dd8c4e6b7fe3d",
        "blocks.1.inner.0.proj.bias": "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925",
        "blocks.1.inner.1.proj.weight": "4f033117087246937f12221626843cbf82e790a53c9bd7dd71010648e4733e1e",
        "blocks.1.inner.1.proj.bias": "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925",
        "zeros": "4fea5e6a3ec5f5474a26d858bc77b6d7bd3ab864ea02d988683fdc648602b248",
        "ones": "fab5e80e5d5200ce080a76d5661a33cbf4175eab6c6b995c2633278699245ff9",
        "constant": "c97609f42a7f736570443a73b0650e765d87b26dfcab7300113d9fec6323b5e2",
        "uniform": "57d7c54fda21c669fe22d565c5821a116111d2db98c3e851c5ba87e43530544e",
        "normal": "c4ddeba4f14f61b3165c224b142ed3099c132ea1fc58bf8a34e79160da795ea5",
        "truncated_normal": "1493d0419517ef05ef1999d502a90cdf36626956f5d9afdd6ba2cd9ec6d9ee8d",
        "truncated_normal_default": "99a03150bd0d947234934da3ea477c41f3591f26230158822f2438a676cbb866",
        "random_uniform": "ceb74723aa65ebb12e75304ef7f89eeb76193af00b17f0e02b9cf71f043eae5c",
        "random_normal": "6855d93778d36544d6206a10f5ce3c9d9300cf326480d8adf6d7d3b9cfa246f0",
        "vs_uniform": "4a9bc824c6440aafbc3fb2eab8a2630ebe56b50cc79c38914e7c91605f89fc8e",
        "vs_truncated": "e72196bfa9af5820f6d99335eca1852f0926238089365fae94702f6590ad18ee",
        "vs_untruncated": "edf5490db9efcfa82388330f7a91fe4e31c505d5689f2cf30c51c01a11dffa6c",
        "glorot_uniform": "92d89a8539aff0bd8ab54b3f30a95a88b2f77b2a29efedf3ba7186901d131644",
        "glorot_normal": "42daf25f1bed1fce015611fba8e4c855f80665205409c399c7185b9cdf141b92",
        "he_uniform": "d7b2153f9699d392f324379a0764c1347edb885ae803a988c228bdb88a17b889",
        "he_normal": "1b822bba05c76c136d591c1af68e07651583593b56e8995aebe37eaeebe1d0b7",
        "lecun_uniform": "9c2037aa6d66541219b227ef2e1275320c0996ded42d77a4ca08903a1de3909c",
        "lecun_normal": "5d20d020d353e113c2c2b68bfe9732f5dde8a29b8629b71ed2bd28ee4f329fb0",
        "xavier_uniform": "5f2c4a264027d32181717c15394b0bd198b4cdd0d64eef0d0b89ef401c8aca8b",
        "xavier_normal": "ff4949975fcee24caaee6f7aefb9689d8683abe4c35d96b29324c92d37645e8a",
        "kaiming_uniform": "a11c1090c9049049e73f226c15c22efcee1956ccf19e78171c7a343dc90f091f",
        "kaiming_normal": "bf73fe93396e7044f446966a4ed0ac7cc5e4a571cd6b8574b0cce05253d85858",
        "torch_default": "a77323606b46d76a3a1b5c6b0c74b0abeed0606fc352cbad1c0a234c07c68d7c",
        "identity": "0a0426abcbc9f1f18c16f54c92785d05c9a45786ba7e73aa970e4c60b0bc9be8",
        "eye": "3824888deca970f240a21818a3267c796f3010607b0c10c3ef18cd4bff191d47",
        "dirac": "9949df400580c49a778ba84fca0abb4783c8acf4375a9ee17c1f51fa8cfb9d90",
        "sparse": "c25870823fc9d6f176fa50459e16802029ca4dd5091c753e1b1a00af16f967ad",
        "<data>": "3d0521912e862ac5bb465da5fef94cf1719e0298a25a0adf7b171439b195906c",
        "<file>": "61ad8d5c2b01529336384a30e65b7068c36b9ce737e998b338a3812a9ff1c2e1",
    },
    "keras_float32": {
        "dense/kernel": "552a1fba327fbf33938a2bd73d8b6670bcdbf93f01185bc58522ec3be41afdfa",
        "dense/bias": "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
        "conv/kernel": "de70b0d39676107ffd9d285488c7bcab099c55965da3b3000193a3dd1c234f80",
        "conv/bias": "9d908ecfb6b256def8b49a7c504e6c889c4b0e41fe6ce3e01863dd7b61a20aa0",
        "deconv/kernel": "eef3155135da6acbd37f2aedf814fc3835a0c70d12f2a490673fc668a641b3f6",
        "block_0/d/kernel": "e4d0e8d862602824b64396ec3c0a3413d9d64f042ac510856830c1e7dbdbf860",
        "block_0/d/bias": "fc201dadcef22f5ef3382ca9cfd15c63fd16a57a4d30398eed0b917f1f03785f",
        "block_1/d/kernel": "2fd84c17dd0eec877dd4a4a9228ee1fb0d9ebdc9dfff8cc835a8c143f829e0e5",
        "block_1/d/bias": "cba616686f892435e36d99830b4265db773cb7c78a0766e0ab813512c84d0fd7",
        "<data>": "6c87512b27c3485e63e1720c11ecc8df4d1877d8faf1b4d6be0264299cd096b0",
        "<file>": "d75b78730420e33ba989d6685f5e8feb4068d85560e2da3c590fbd9df2477a0e",
    },
    "float16": {
        "fc.weight": "cea4137e43fa2ceeaf1e9eb5478ae6179859f4dfba10761b910a4a5a58ef80f3",
        "fc.bias": "c399c4f6d78c1ba65937ceaa90a574e746be027a62d7bf2858dc98a38adb7432",
        "uniform": "20fe6a006f0917448613298a0f3226c0151a1c048c9d0697544a31acf8db8bd8",
        "normal": "c207a654538b7143f1bde80504e3d5a1ba835ad474efdb711539325b914bcc01",
        "truncated_normal": "a58fea41e59b0d52c171d344f8fc7d6f9e8ae1ee37480f827fa7cfe73854476d",
        "he_normal": "35a569ab7e9e5344587c912030cb224b40961952d1590841fa16a414713a10a9",
        "constant": "b2bac49065f3e63bc2695490c57da928bb1eff6ac8edf275d81c1640c7293315",
        "eye": "3c4de88ab03e82059ad15c6915734298c63593f208ba9d12fe8bce052ef391d2",
        "<data>": "e8c958d51e49f2e8446e34f5a1c422e2dfe6a123ad8ea1e7f8de9572282c3fa6",
        "<file>": "bb554f690736050f9da9391b8cc3d2b88df862bca4a0c261a353978e1209cb79",
    },
    "bfloat16": {
        "fc.weight": "8748ea46ce74a8ca09603bc91f59611028e2768d0d6473c8c7f53793ba92b510",
        "fc.bias": "ee2b5a459eca0238f11ce0c5baf0e63e048ccdc8c5562144b6c122354d8f5951",
        "uniform": "c54940def0d139b9eea51e68efe616b4f9093ec8899d2df5faae2e54f3f329d7",
        "normal": "1be4bfd0ae9f1e69837d38e0fd99dc537d136a1d72128065d1e56addf9678ee4",
        "truncated_normal": "cf630cf60ab0d99a085b7def9adea0a1a5ab804e3c228c3ebcb1cb70ada8f06d",
        "he_normal": "6a596527abfa235f7b2f5e37c2b871069df5085e1db10824d40631f227c10095",
        "constant": "c335299e391316d64b130e0316159988d6bb628f330c14785aa19d03d08de4f0",
        "eye": "9e8db99f191218d2da77884b156bba84f4c365cc5aa376d5ae78f6c2e9b12509",
        "<data>": "f52b8c666391b539f53ded457699101cb734a5dbf55a96693950a81708339b5b",
        "<file>": "89aa08977d6e6e452e958e05e0579fa7d38fabce9009073ce5bc348277b83d15",
    },
    "float64": {
        "fc.weight": "3e4ec6124081d0b28a4c5ccfa42ce1fec2d67102e6d898163a4039c2e0e1d970",
        "fc.bias": "ad546babc78dc9917f24cee0c069e6ddec12e57327514219f48640831809a915",
        "uniform": "417258f6a537806445b8ca28353c18327191f9ec32ba60c70453e5f8f73112aa",
        "normal": "ca4c67fd9d765002e296e2d461e7939aeddca78b2afb2a5690619836f1a603f3",
        "truncated_normal": "f101116f04deab942b63f22291029a45e5dd7b0b9fecfd276a6ecc7d95462418",
        "he_normal": "e9adc19bba2bb568f6826e926a613678a2d329d93c8035c71226698fb20781bf",
        "constant": "22ad5ae7aaf1937d8812b3bc773e29fe9e2dce14a6d8f25dde83bb8f9871b331",
        "eye": "c7340884a6f8321ca55afa1a2031e21ec8f79bf0153412639cfef08478a2c4df",
        "<data>": "81fb3fc186a408633cbb9bc819e1f4e0f6bd35341357d9523b6d46b2da6d0bdd",
        "<file>": "2b0a8a76dc1ac1063f8fb81996e76dffa29b4657fe8d8e12dcd8bd908a00e404",
    },
    "int64_batch_norm": {
        "bn.num_batches_tracked": "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc",
        "bn.weight": "f46913286d895f62d646314f400fc3d7a543cf34eb4ae56df87f43dc4582a36b",
        "bn.bias": "9d908ecfb6b256def8b49a7c504e6c889c4b0e41fe6ce3e01863dd7b61a20aa0",
        "bn.running_mean": "9d908ecfb6b256def8b49a7c504e6c889c4b0e41fe6ce3e01863dd7b61a20aa0",
        "bn.running_var": "f46913286d895f62d646314f400fc3d7a543cf34eb4ae56df87f43dc4582a36b",
        "<data>": "f7f6d782349c3f6d4d63078eacfb1d957d4b9c2ac513727ed02874ff3fa0c715",
        "<file>": "72175483e04549b17815a9cbd052e9a6524ad476a32db526454253f8927e349c",
    },
    "trunc_normal": {
        "trunc_normal_default": "29039c0efff11ea11627d8a311157812e4397acc1ea7f067347b66d95b6eace9",
        "trunc_normal_absolute": "cc9b471513ba317b56561aad8bc09f7497bb91ef86998de32785e2ac0e682079",
        "empty.weight": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "empty.bias": "de47c9b27eb8d300dbb5f2c353e632c393262cf06340c4fa7f1b40c4cbd36f90",
        "trunc_normal_vit": "2c2951449c254e5f35acca568cd2c49963ba4a3811ad9c5af276f1eb55fcbbd2",
        "<data>": "68464a643fcf1fc53bb236f7137230e70256ac7c8510ee0bdb32a7d5c62747b3",
        "<file>": "5708d8348ea6e5aa589a3463acb416e929d2d6b59d6408d19e0ec570fc637cf8",
    },
    "sinusoidal": {
        "positions": "8f5cf61d27204e44e560ef63629ac442d70db2af69b4359e49d5fddd3bdbbf6d",
        "positions_f32": "b243f0acc1ae237bf74a2552009ce976945be2933a757fe0f152858779b1a71e",
        "<data>": "1ce3496db289c66a69295d75308005b6203d81119e21878048a5511e52c79bd1",
        "<file>": "27381904466e167d43e3ee98f70be3cf8b58aa97831974b232e508ccf1abd2f5",
    },
}

ORTHOGONAL: dict[str, list[float]] = {
    "torch": [
        -0.8655207037006751, -0.30510080318510735, -0.44258144048108866,
        -1.1008674215830783, -0.174086515808773, -0.9801936360387429,
        -0.838443127601489, 0.7456054202193975, -0.10027275098443197,
        1.0593651681982932, -1.0376527016059807, 0.2024047594994393,
    ],
    "keras": [
        -0.5770138024671168, -0.11605767720584866, -0.06684850065628799,
        -0.20340053545673825, -0.6534624240258285, 0.7062434454655288,
        -0.2950542936540591, -0.5589620850676593, -0.6917684677373205,
        -0.7339116143887188, 0.497070280146265, 0.13493650633295953,
    ],
}


@pytest.mark.parametrize("key", list(GOLDEN))
def test_golden_digests(key):
    assert digests(plan_of(GOLDEN_SPECS[key])) == GOLDEN[key]


@pytest.mark.parametrize("key", ["every_initializer_float32", "bfloat16"])
def test_golden_digests_with_odd_chunks_and_one_thread(key):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        got = digests(plan_of(GOLDEN_SPECS[key]), chunk_bytes=37, executor=executor)
    assert got == GOLDEN[key]


@pytest.mark.parametrize("key", ["every_initializer_float32", "float16", "float64",
                                 "trunc_normal"])
def test_golden_digests_on_the_pure_numpy_reference_path(key):
    """The goldens are the algorithm's, not the numba kernel's: the reference path
    (``weightinit.core.rng.transforms``, whole-array numpy) gives the same bytes."""
    from weightinit.core.rng import kernels

    was = kernels.numba_enabled() or not kernels.HAVE_NUMBA
    kernels.use_numba(False)
    try:
        assert digests(plan_of(GOLDEN_SPECS[key])) == GOLDEN[key]
    finally:
        kernels.use_numba(was)


def test_written_file_is_the_golden_file(tmp_path):
    """``write_file`` writes the pinned bytes, header included."""
    plan = plan_of(GOLDEN_SPECS["every_initializer_float32"])
    path = tmp_path / "golden.safetensors"
    write_file(plan, path)
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    expected = GOLDEN["every_initializer_float32"]
    assert hashlib.sha256(data[8 + length :]).hexdigest() == expected["<data>"]
    assert hashlib.sha256(data).hexdigest() == expected["<file>"]


@pytest.mark.parametrize("convention", list(ORTHOGONAL))
def test_golden_orthogonal_values(convention):
    got = orthogonal_values(ORTHOGONAL_SPECS[convention])
    assert got == pytest.approx(ORTHOGONAL[convention], rel=1e-12, abs=1e-15)


def test_goldens_cover_every_initializer_and_dtype():
    names, dtypes = {"orthogonal"}, set()
    for body in GOLDEN_SPECS.values():
        for output in plan_of(body).outputs:
            names.add(output.plan.init.config["name"])
            dtypes.add(output.plan.dtype)
    assert names == set(REGISTRY)
    assert {"float32", "float16", "bfloat16", "float64", "int64"} <= dtypes
