"""Builders of the kitchen categories: vessels and kitchen utensils.

Each builder takes the instance's generator and returns a part-labelled ``Mesh`` (parts in the
order of ``objects.CATEGORY_PARTS``) in the object's frame: resting on z=0, the long axis along
x, sizes in metres. Builders draw only shape and proportions; ``objects.make_object`` paints
the parts. Every part a task grasps fits the parallel gripper (0.07 m usable opening): closed
bodies are narrower than that where the fingers close, wider vessels are open with a rim the
fingers can straddle, and lids carry a knob.
"""

from __future__ import annotations

import numpy as np

from grasp_semantics.data.mesh import (
    Mesh,
    along_x,
    box,
    extrude,
    frustum,
    hollow_frustum,
    pose,
    ring_band,
    rot_y,
    torus_arc,
)


def _side_handle(m: Mesh, part: int, r_at: float, zc: float, rh: float, rt: float, wall=0.004):
    """A loop handle (torus arc in the xz-plane) on the +x side of a body whose radius is
    ``r_at`` at height ``zc``; its ends meet the body's surface."""
    cx = r_at + rh * 0.3
    a_end = np.arccos(np.clip((r_at - wall / 2 - cx) / rh, -1, 1))
    m.add(torus_arc(rh, rt, -a_end, a_end, 24, 10), part, transform=pose(None, (cx, 0, zc)))


def _lid(m: Mesh, part: int, radius: float, z: float, rng) -> None:
    """A lid disc of ``radius`` at height ``z`` with a knob on top (the knob is what fingers
    close on)."""
    lt = rng.uniform(0.005, 0.008)
    m.add(frustum(radius, radius * 0.95, lt, 32), part, transform=pose(None, (0, 0, z)))
    rk, hk = rng.uniform(0.011, 0.015), rng.uniform(0.018, 0.026)
    m.add(frustum(rk, rk * 0.85, hk, 16), part, transform=pose(None, (0, 0, z + lt - 0.001)))


def _spout(m: Mesh, part: int, x: float, z: float, rng, length=(0.06, 0.09)) -> None:
    """A tapering spout leaving the body at (x, 0, z) towards -x, rising."""
    phi = rng.uniform(0.5, 0.9)
    ls, rs = rng.uniform(*length), rng.uniform(0.01, 0.013)
    tube = along_x(ls, rs, rs * rng.uniform(0.45, 0.6), 14)
    m.add(tube, part, transform=pose(rot_y(np.pi + phi), (x, 0, z)))


def mug(rng) -> Mesh:
    m = Mesh.empty()
    r1 = rng.uniform(0.036, 0.046)
    r0 = r1 * rng.uniform(0.88, 1.0)
    h = rng.uniform(0.08, 0.11)
    wall = rng.uniform(0.004, 0.007)
    m.add(hollow_frustum(r0, r1, h, wall, 0.006), 0)
    rh, rt = rng.uniform(0.022, 0.03), rng.uniform(0.005, 0.008)
    zc = h * rng.uniform(0.45, 0.55)
    r_at = r0 + (r1 - r0) * zc / h
    cx = r_at + rh * rng.uniform(0.15, 0.35)
    a_end = np.arccos(np.clip((r_at - wall / 2 - cx) / rh, -1, 1))
    m.add(torus_arc(rh, rt, -a_end, a_end, 20, 10), 1, transform=pose(None, (cx, 0, zc)))
    return m


def cup(rng) -> Mesh:
    m = Mesh.empty()
    r1 = rng.uniform(0.026, 0.031)
    r0 = r1 * rng.uniform(0.72, 0.85)
    h = rng.uniform(0.09, 0.13)
    m.add(hollow_frustum(r0, r1, h, rng.uniform(0.002, 0.003), 0.004), 0)
    za, zb = h * rng.uniform(0.25, 0.35), h * rng.uniform(0.6, 0.7)
    ra, rb = r0 + (r1 - r0) * za / h, r0 + (r1 - r0) * zb / h
    t = rng.uniform(0.003, 0.005)
    m.add(ring_band(ra - 0.001, ra + t, za, rb - 0.001, rb + t, zb, 32), 1)
    return m


def bottle(rng) -> Mesh:
    m = Mesh.empty()
    rb = rng.uniform(0.027, 0.033)
    hb = rng.uniform(0.13, 0.19)
    m.add(frustum(rb * rng.uniform(0.95, 1.0), rb, hb, 28), 1)
    rn = rng.uniform(0.011, 0.014)
    hs = rng.uniform(0.025, 0.045)
    m.add(frustum(rb, rn, hs, 28), 1, transform=pose(None, (0, 0, hb)))
    hn = rng.uniform(0.01, 0.02)
    m.add(frustum(rn, rn, hn, 20), 1, transform=pose(None, (0, 0, hb + hs)))
    rc, hc = rn + rng.uniform(0.002, 0.004), rng.uniform(0.015, 0.022)
    m.add(frustum(rc, rc, hc, 20), 0, transform=pose(None, (0, 0, hb + hs + hn - 0.002)))
    return m


def _long_handle(m: Mesh, part: int, x: float, z: float, rng) -> None:
    """A straight stick handle leaving a pan's rim at (x, 0, z) along +x, tilted up."""
    lh, r = rng.uniform(0.13, 0.18), rng.uniform(0.009, 0.012)
    tilt = rng.uniform(0.0, 0.25)
    m.add(along_x(lh, r, r * 0.9, 14), part, transform=pose(rot_y(-tilt), (x, 0, z)))


def pan(rng) -> Mesh:
    m = Mesh.empty()
    r1 = rng.uniform(0.08, 0.105)
    h = rng.uniform(0.035, 0.05)
    body = hollow_frustum(r1 * rng.uniform(0.8, 0.9), r1, h, rng.uniform(0.004, 0.006), 0.005, 40)
    m.add(body, 0)
    _long_handle(m, 1, r1 - 0.004, h * rng.uniform(0.55, 0.8), rng)
    return m


def kettle(rng) -> Mesh:
    """Jug kettle: a tall body narrowing through a shoulder to a collar that the fingers can
    close on (under the lid), side loop handle, spout, lid with a knob."""
    m = Mesh.empty()
    r0, hb = rng.uniform(0.06, 0.075), rng.uniform(0.1, 0.14)
    r1 = r0 * rng.uniform(0.85, 0.97)
    rc, hs, hc = rng.uniform(0.027, 0.032), rng.uniform(0.025, 0.04), rng.uniform(0.022, 0.03)
    m.add(frustum(r0, r1, hb, 36), 0)
    m.add(frustum(r1, rc, hs, 36), 0, transform=pose(None, (0, 0, hb)))
    m.add(frustum(rc, rc, hc, 28), 0, transform=pose(None, (0, 0, hb + hs - 0.001)))
    rh, rt = rng.uniform(0.035, 0.045), rng.uniform(0.008, 0.011)
    zc = max(hb * rng.uniform(0.45, 0.6), rh + rt + 0.008)
    _side_handle(m, 1, r0 + (r1 - r0) * zc / hb, zc, rh, rt)
    zs = hb * rng.uniform(0.3, 0.5)
    _spout(m, 2, -(r0 + (r1 - r0) * zs / hb) + 0.012, zs, rng)
    _lid(m, 3, rc - 0.003, hb + hs + hc - 0.002, rng)
    return m


def teapot(rng) -> Mesh:
    """Squat round teapot: a belly, a shoulder up to a collar under the lid, loop handle,
    spout, lid with a knob."""
    m = Mesh.empty()
    rb0, rbel = rng.uniform(0.045, 0.055), rng.uniform(0.065, 0.08)
    h1, h2 = rng.uniform(0.04, 0.06), rng.uniform(0.035, 0.05)
    rc, hc = rng.uniform(0.027, 0.032), rng.uniform(0.018, 0.025)
    m.add(frustum(rb0, rbel, h1, 36), 0)
    m.add(frustum(rbel, rc, h2, 36), 0, transform=pose(None, (0, 0, h1)))
    m.add(frustum(rc, rc, hc, 28), 0, transform=pose(None, (0, 0, h1 + h2 - 0.001)))
    rh, rt = rng.uniform(0.03, 0.04), rng.uniform(0.007, 0.01)
    zc = max(h1, rh + rt + 0.006)
    r_at = np.interp(zc, [0, h1, h1 + h2], [rb0, rbel, rc])
    _side_handle(m, 1, r_at, zc, rh, rt, wall=0.012)
    zs = h1 * rng.uniform(0.5, 0.8)
    _spout(m, 2, -np.interp(zs, [0, h1], [rb0, rbel]) + 0.012, zs, rng, (0.07, 0.1))
    _lid(m, 3, rc - 0.003, h1 + h2 + hc - 0.002, rng)
    return m


def jug(rng) -> Mesh:
    """Open pitcher: a vessel with a rim, a loop handle and a pouring lip."""
    m = Mesh.empty()
    r0, h = rng.uniform(0.042, 0.05), rng.uniform(0.13, 0.18)
    r1 = r0 * rng.uniform(0.9, 1.05)
    wall = rng.uniform(0.004, 0.006)
    m.add(hollow_frustum(r0, r1, h, wall, 0.007, 36), 0)
    rh, rt = rng.uniform(0.035, 0.045), rng.uniform(0.007, 0.01)
    zc = h * rng.uniform(0.5, 0.6)
    _side_handle(m, 1, r0 + (r1 - r0) * zc / h, zc, rh, rt, wall)
    sw, sl = rng.uniform(0.015, 0.022), rng.uniform(0.015, 0.025)
    lip = np.array([[-r1 + wall / 2, -sw], [-r1 + wall / 2, sw], [-r1 - sl, 0.0]])
    m.add(extrude(lip, h - rng.uniform(0.01, 0.016), h + 0.002), 2)
    return m


def saucepan(rng) -> Mesh:
    """Deep pot with a stick handle and a drop-in lid resting below the rim, a gap left all
    round, so fingers can still straddle the rim; the lid's knob stands above the rim."""
    m = Mesh.empty()
    r1, h = rng.uniform(0.065, 0.08), rng.uniform(0.06, 0.085)
    wall = rng.uniform(0.003, 0.004)
    m.add(hollow_frustum(r1 * rng.uniform(0.9, 0.97), r1, h, wall, 0.004, 40), 0)
    _long_handle(m, 1, r1 - 0.004, h * rng.uniform(0.6, 0.85), rng)
    _lid(m, 2, r1 - wall - rng.uniform(0.017, 0.022), h - rng.uniform(0.012, 0.018), rng)
    return m


def goblet(rng) -> Mesh:
    """Stemmed cup: an open bowl, a long stem, a heavy disc foot tall enough to be gripped
    at its edge."""
    m = Mesh.empty()
    rb, tb = rng.uniform(0.027, 0.033), rng.uniform(0.013, 0.017)
    m.add(frustum(rb, rb, tb, 32), 2)
    rs, hs = rng.uniform(0.0055, 0.0075), rng.uniform(0.055, 0.08)
    m.add(frustum(rs * 1.3, rs, hs, 16), 1, transform=pose(None, (0, 0, tb - 0.001)))
    r0, r1 = rng.uniform(0.018, 0.024), rng.uniform(0.029, 0.034)
    hw = rng.uniform(0.06, 0.085)
    bowl = hollow_frustum(r0, r1, hw, rng.uniform(0.0025, 0.004), 0.006, 32)
    m.add(bowl, 0, transform=pose(None, (0, 0, tb + hs - 0.002)))
    return m


def ladle(rng) -> Mesh:
    """Ladle lying on the table: an upright open bowl and a flat handle sloping from its rim
    down to the table."""
    m = Mesh.empty()
    r0, r1 = rng.uniform(0.018, 0.024), rng.uniform(0.03, 0.036)
    hb = rng.uniform(0.03, 0.045)
    m.add(hollow_frustum(r0, r1, hb, rng.uniform(0.002, 0.003), 0.004, 32), 0)
    length, w, t = rng.uniform(0.2, 0.26), rng.uniform(0.012, 0.018), rng.uniform(0.004, 0.006)
    alpha = np.arcsin((hb - t) / length)
    x_top, z_top = -r1 + 0.004, hb - t / 2
    centre = (x_top - length / 2 * np.cos(alpha), 0, z_top - length / 2 * np.sin(alpha))
    m.add(box((length, w, t)), 1, transform=pose(rot_y(-alpha), centre))
    return m


def jar(rng) -> Mesh:
    """Screw-top jar: a cylinder with a short shoulder and a lid a little wider than the neck."""
    m = Mesh.empty()
    rb, hb = rng.uniform(0.026, 0.033), rng.uniform(0.07, 0.12)
    m.add(frustum(rb, rb, hb, 36), 1)
    rn, hs = rb * rng.uniform(0.88, 0.95), rng.uniform(0.008, 0.015)
    m.add(frustum(rb, rn, hs, 36), 1, transform=pose(None, (0, 0, hb - 0.001)))
    rl, hl = rn + 0.003, rng.uniform(0.015, 0.025)
    m.add(frustum(rl, rl, hl, 36), 0, transform=pose(None, (0, 0, hb + hs - 0.003)))
    return m
