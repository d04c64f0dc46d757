"""torch.library.opcheck over sample inputs: schema, FakeTensor/Meta, AOT dispatch with dynamic shapes."""
import pytest
import torch

from conftest import DEVICES


def samples(device):
    g = torch.Generator().manual_seed(0)

    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=dtype).to(device)

    yield torch.ops.custom.conv1d.default, (r(2, 4, 17), r(6, 4, 3), r(6), [1], [1], [1], 1)
    yield torch.ops.custom.conv1d.default, (r(3, 6, 40), r(6, 2, 5), None, [2], [3], [2], 3)
    yield torch.ops.custom.conv1d.default, (r(5, 33), r(7, 5, 4), r(7), [1], [0], [1], 1)  # unbatched
    yield torch.ops.custom.conv1d.default, (r(2, 8, 30, dtype=torch.float64), r(8, 1, 4, dtype=torch.float64),
                                            None, [1], [3], [1], 8)  # depthwise, causal padding
    yield torch.ops.custom.conv1d.default, (r(0, 4, 10), r(6, 4, 3), r(6), [1], [1], [1], 1)  # empty batch
    yield torch.ops.custom.conv1d.padding, (r(2, 4, 19), r(4, 4, 4), r(4), [1], "same", [3], 1)
    yield torch.ops.custom.conv1d.padding, (r(2, 4, 19), r(4, 2, 4), None, [2], "valid", [1], 2)
    yield torch.ops.custom.conv1d.default, (r(2, 4, 25, dtype=torch.bfloat16), r(8, 4, 3, dtype=torch.bfloat16),
                                            r(8, dtype=torch.bfloat16), [1], [1], [1], 1)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    count = 0
    for op, args in samples(device):
        torch.library.opcheck(op, args)
        count += 1
    assert count == 8
