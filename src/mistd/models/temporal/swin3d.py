"""3D (video) Swin transformer layer: window self-attention over (frames, rows, columns).

Reproduces the layer the official CHAL code uses (`nets/stst.py`, a Video-Swin layer) with these
facts: pre-norm (LayerNorm eps 1e-5), qkv WITHOUT bias, attention scale head_dim^-0.5 applied to q,
a learned 3D relative position bias indexed as in Video Swin, softmax, output projection with
bias; MLP dim -> 4*dim -> dim with exact (erf) GELU; the input is padded with zeros AFTER norm1 to
window multiples (the zeros take part in the attention of unshifted layers); shifted layers roll the
tokens by -shift and mask cross-region pairs with -100; stochastic depth on both residual branches.

Traced graphs (ONNX export): Video Swin shrinks the window (and drops the shift) along a dimension
no larger than the window, a Python decision on the input size. A traced layer keeps its
configured window and shift instead, so an exported graph is valid for the sizes where that rule
leaves them unchanged, `SwinLayer3D.min_size()` and up (`mistd.inference.export` refuses smaller
sizes and the ONNX backend checks its inputs). Padding, cropping and the shift mask are computed
from the size with tensor operations, so they follow a dynamic size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Size3 = tuple[int, int, int]


def window_partition(x: torch.Tensor, window: Size3) -> torch.Tensor:
    """`[B, D, H, W, C] -> [B * num_windows, wd*wh*ww, C]` (D, H, W multiples of the window)."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.view(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_merge(
    windows: torch.Tensor, window: Size3, b: int, d: int, h: int, w: int
) -> torch.Tensor:
    """Inverse of `window_partition`: `[B * num_windows, N, C] -> [B, D, H, W, C]`."""
    wd, wh, ww = window
    x = windows.view(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def effective_window(size: Size3, window: Size3, shift: Size3) -> tuple[Size3, Size3]:
    """Video Swin's rule: along a dimension no larger than the window, the window shrinks to the
    size and the shift becomes 0."""
    use_window, use_shift = list(window), list(shift)
    for i in range(3):
        if size[i] <= window[i]:
            use_window[i] = size[i]
            use_shift[i] = 0
    return (use_window[0], use_window[1], use_window[2]), (use_shift[0], use_shift[1], use_shift[2])


def min_unchanged_size(window: Size3, shift: Size3) -> Size3:
    """Smallest (D, H, W) at which `effective_window` keeps `window` and `shift`: the window
    itself along an unshifted dimension (a size equal to the window leaves it as it is), one more
    along a shifted one (at a size equal to the window the shift is dropped)."""
    d, h, w = (wi + 1 if si else wi for wi, si in zip(window, shift, strict=True))
    return d, h, w


def relative_position_index(window: Size3) -> torch.Tensor:
    """`[N, N]` index into the `(2wd-1)(2wh-1)(2ww-1)` bias table for each token pair."""
    wd, wh, ww = window
    grid = torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij")
    coords = torch.stack(grid).flatten(1)  # [3, N]
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # [N, N, 3]
    relative = relative + torch.tensor([wd - 1, wh - 1, ww - 1])
    strides = torch.tensor([(2 * wh - 1) * (2 * ww - 1), 2 * ww - 1, 1])
    return (relative * strides).sum(-1)


def shifted_window_mask(
    size: Size3, window: Size3, shift: Size3, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """`[num_windows, N, N]` additive mask (0 or -100) for a rolled (shifted) window layout.

    Official `create_mask`: the volume of `size` padded to window multiples is cut along each
    dimension into the slices `[:-window]`, `[-window:-shift]`, `[-shift:]`, every combination
    labelled apart, and token pairs of one window with different labels are masked. Along an
    unshifted dimension the last slice `[-0:]` is the whole dimension, so it separates nothing.
    Built with tensor operations on `size` (ints, or sizes read from a traced tensor), so a
    traced graph builds the mask for the size it runs at.
    """
    label = torch.zeros((1, 1, 1), dtype=torch.int64, device=device)
    for axis, (s, wi, si) in enumerate(zip(size, window, shift, strict=True)):
        padded = (s + wi - 1) // wi * wi
        position = torch.arange(padded, device=device)
        if si:
            region = (position >= padded - wi).long() + (position >= padded - si).long()
        else:
            region = torch.zeros_like(position)
        label = label * 3 + region.reshape([-1 if i == axis else 1 for i in range(3)])
    windows = window_partition(label[None, ..., None], window).squeeze(-1)  # [num_windows, N]
    different = windows[:, None, :] != windows[:, :, None]
    return torch.zeros_like(different, dtype=dtype).masked_fill(different, -100.0)


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside 3D windows with a relative position bias.

    `forward(x [B*nW, N, C], mask [nW, N, N] or None) -> [B*nW, N, C]`.
    """

    def __init__(self, dim: int, window: Size3, num_heads: int, *, qkv_bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        table_size = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer(
            "relative_position_index", relative_position_index(window), persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B*nW, heads, N, head_dim]
        attention = (q * self.scale) @ k.transpose(-2, -1)
        # Official quirk kept: with a shrunk window, the index is cropped to [:N, :N].
        index = self.relative_position_index[:n, :n].reshape(-1)
        bias = self.relative_position_bias_table[index].reshape(n, n, -1).permute(2, 0, 1)
        attention = attention + bias.unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            attention = attention.view(b // num_windows, num_windows, self.num_heads, n, n)
            attention = (attention + mask[None, :, None]).view(-1, self.num_heads, n, n)
        attention = attention.softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, c))


class SwinLayer3D(nn.Module):
    """One pre-norm Video-Swin block: (shifted) window attention + MLP, both residual.

    Args:
        dim: token channels. num_heads: attention heads.
        window: (frames, rows, columns) window. shift: (0, 0, 0) or e.g. (0, wh/2, ww/2).
        mlp_ratio: MLP hidden = dim * mlp_ratio. drop_path: stochastic depth rate (train only).

    `forward(x [B, D, H, W, C]) -> [B, D, H, W, C]`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        window: Size3,
        shift: Size3 = (0, 0, 0),
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        qkv_bias: bool = False,
    ):
        super().__init__()
        if not all(0 <= s < w for s, w in zip(shift, window, strict=True)):
            raise ValueError(f"shift {shift} must be in [0, window) for window {window}")
        self.window, self.shift = tuple(window), tuple(shift)
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, self.window, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def min_size(self) -> Size3:
        """Smallest input (D, H, W) at which the window and shift stay as configured: a traced
        graph of this layer is valid from there up (see module docstring)."""
        return min_unchanged_size(self.window, self.shift)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, d, h, w, c = x.shape
        if torch.jit.is_tracing():
            # The shrink rule would compare traced sizes in Python (see module docstring).
            window, shift = self.window, self.shift
        else:
            window, shift = effective_window((d, h, w), self.window, self.shift)
        x = self.norm1(x)
        # Padded unconditionally (zero amounts copy): an `if` on the amounts would be traced as
        # a constant, and with a window that does not divide the map the amounts follow the size.
        pad = [(wi - s % wi) % wi for s, wi in zip((d, h, w), window, strict=True)]
        x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
        _, dp, hp, wp, _ = x.shape
        mask = None
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
            # Official: the mask is built from the configured window and shift and the unpadded
            # size (`create_mask(num_frames, H, W, window_size, shift_size)`).
            mask = shifted_window_mask((d, h, w), self.window, self.shift, x.device, x.dtype)
        windows = self.attn(window_partition(x, window), mask)
        x = window_merge(windows, window, b, dp, hp, wp)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w, :]

    def _drop_path(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1.0 - self.drop_path
        sample_mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * sample_mask / keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._drop_path(self._attend(x))
        return x + self._drop_path(self.mlp(self.norm2(x)))
