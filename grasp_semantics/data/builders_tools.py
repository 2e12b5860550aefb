"""Builders of the tool and household categories, lying on the table.

Each builder takes the instance's generator and returns a part-labelled ``Mesh`` (parts in the
order of ``objects.CATEGORY_PARTS``) in the object's frame: resting on z=0, the long axis along
x, sizes in metres. Builders draw only shape and proportions; ``objects.make_object`` paints
the parts. Small parts that tasks grasp (a pivot, a hinge, a tail cap, a nozzle, a trigger)
stand clear of their neighbours so that the fingers can close on them alone.
"""

from __future__ import annotations

import numpy as np

from grasp_semantics.data.mesh import (
    Mesh,
    along_x,
    box,
    extrude,
    frustum,
    pose,
    ring_band,
    rot_x,
    rot_y,
    rot_z,
    torus_arc,
)


def knife(rng) -> Mesh:
    m = Mesh.empty()
    lh, wh, hh = rng.uniform(0.09, 0.12), rng.uniform(0.016, 0.024), rng.uniform(0.014, 0.02)
    m.add(box((lh, wh, hh)), 1, transform=pose(None, (-lh / 2, 0, hh / 2)))
    lb, bw, bt = rng.uniform(0.1, 0.16), rng.uniform(0.02, 0.032), rng.uniform(0.0018, 0.003)
    blade = np.array([[0, -bw / 2], [0.65 * lb, -bw / 2], [lb, bw / 2], [0, bw / 2]])
    m.add(extrude(blade, hh / 2 - bt / 2, hh / 2 + bt / 2), 0)
    return m


def hammer(rng) -> Mesh:
    m = Mesh.empty()
    s = rng.uniform(0.024, 0.032)
    r = min(rng.uniform(0.011, 0.015), s / 2 - 0.001)
    lh = rng.uniform(0.2, 0.27)
    m.add(along_x(lh, r, r * rng.uniform(0.85, 1.0)), 1, transform=pose(None, (0, 0, s / 2)))
    head = box((s, rng.uniform(0.08, 0.11), s))
    m.add(head, 0, transform=pose(None, (lh + s / 2 - 0.004, 0, s / 2)))
    return m


def spatula(rng) -> Mesh:
    m = Mesh.empty()
    r = rng.uniform(0.008, 0.011)
    lh = rng.uniform(0.12, 0.17)
    m.add(along_x(lh, r), 1, transform=pose(None, (-lh, 0, r)))
    wn, wf, lb = rng.uniform(0.025, 0.035), rng.uniform(0.055, 0.07), rng.uniform(0.08, 0.1)
    bt = rng.uniform(0.003, 0.005)
    blade = np.array([[0, -wn / 2], [lb, -wf / 2], [lb, wf / 2], [0, wn / 2]])
    m.add(extrude(blade, r - bt / 2, r + bt / 2), 0, transform=pose(None, (-0.005, 0, 0)))
    return m


def screwdriver(rng) -> Mesh:
    m = Mesh.empty()
    r = rng.uniform(0.012, 0.017)
    lh = rng.uniform(0.08, 0.11)
    m.add(along_x(lh, r * 0.9, r, 12), 1, transform=pose(None, (-lh, 0, r)))
    rs, ls = rng.uniform(0.0025, 0.0035), rng.uniform(0.07, 0.13)
    m.add(along_x(ls, rs, rs, 12), 0, transform=pose(None, (0, 0, r)))
    m.add(box((0.012, rs * 2.4, rs * 0.8)), 0, transform=pose(None, (ls + 0.005, 0, r)))
    return m


def scissors(rng) -> Mesh:
    m = Mesh.empty()
    major, minor = rng.uniform(0.016, 0.02), rng.uniform(0.0045, 0.006)
    lh = rng.uniform(0.04, 0.05)
    v, t = torus_arc(major, minor, 0, 2 * np.pi, 20, 8)
    v = v @ rot_x(np.pi / 2).T  # lying flat
    v[:, 2] *= 1.5  # plastic loops are taller than wide: oval cross-section
    zc = 1.5 * minor
    off = major + minor + rng.uniform(0.006, 0.012)
    for side in (-1, 1):
        m.add((v, t), 1, transform=pose(None, (-lh, side * off, zc)))
        conn = box((lh - major, 2 * minor, 2 * minor))
        m.add(conn, 1, transform=pose(None, ((-lh + major) / 2, side * off * 0.5, zc)))
    lb, bw = rng.uniform(0.07, 0.1), rng.uniform(0.016, 0.022)
    blade = np.array([[-0.004, -bw / 2], [lb, -0.002], [lb, 0.002], [-0.004, bw / 2]])
    m.add(extrude(blade, zc - 0.002, zc + 0.002), 0)
    return m


def brush(rng) -> Mesh:
    m = Mesh.empty()
    r = rng.uniform(0.006, 0.009)
    lh = rng.uniform(0.12, 0.17)
    m.add(along_x(lh, r * 0.8, r, 14), 1, transform=pose(None, (-lh, 0, r)))
    hb, wb, lb = rng.uniform(0.009, 0.013), rng.uniform(0.025, 0.042), rng.uniform(0.035, 0.055)
    m.add(box((0.02, wb, hb)), 1, transform=pose(None, (0.01, 0, r)))  # the ferrule
    tuft = np.array([[0, -wb / 2], [lb, -wb * 0.56], [lb, wb * 0.56], [0, wb / 2]])  # flared
    m.add(extrude(tuft, r - hb * 0.4, r + hb * 0.4), 0, transform=pose(None, (0.02, 0, 0)))
    return m


def flashlight(rng) -> Mesh:
    """Torch lying on the table: a wide head (+x), a barrel, a tail cap a little wider than
    the barrel (-x); it rests on the head and the tail."""
    m = Mesh.empty()
    rb, lb = rng.uniform(0.012, 0.017), rng.uniform(0.09, 0.14)
    rh = rb * rng.uniform(1.35, 1.7)
    rt, lt = rb * rng.uniform(1.08, 1.18), rng.uniform(0.024, 0.034)
    z = rh
    m.add(along_x(lt, rt, rt, 20), 2, transform=pose(None, (-lt + 0.001, 0, z)))
    m.add(along_x(lb, rb, rb, 20), 1, transform=pose(None, (0, 0, z)))
    l1, l2 = rng.uniform(0.015, 0.025), rng.uniform(0.02, 0.035)
    m.add(along_x(l1, rb, rh, 24), 0, transform=pose(None, (lb - 0.001, 0, z)))
    m.add(along_x(l2, rh, rh, 24), 0, transform=pose(None, (lb + l1 - 0.002, 0, z)))
    return m


def wrench(rng) -> Mesh:
    """Combination spanner lying flat: an open jaw (+x), a flat shaft raised a little by the
    thicker ends, a closed ring with upright walls (-x)."""
    m = Mesh.empty()
    ts = rng.uniform(0.006, 0.008)
    th = ts + rng.uniform(0.004, 0.006)
    zc = th / 2
    ls, ws = rng.uniform(0.09, 0.15), rng.uniform(0.011, 0.016)
    m.add(box((ls, ws, ts)), 1, transform=pose(None, (0, 0, zc)))
    wj, gap, dj = rng.uniform(0.03, 0.04), rng.uniform(0.01, 0.016), rng.uniform(0.012, 0.018)
    bl = rng.uniform(0.01, 0.014)
    m.add(box((bl, wj, th)), 0, transform=pose(None, (ls / 2 + bl / 2 - 0.002, 0, zc)))
    prong = box((dj, (wj - gap) / 2, th))
    for s in (-1, 1):
        at = (ls / 2 + bl - 0.003 + dj / 2, s * (gap / 2 + (wj - gap) / 4), zc)
        m.add(prong, 0, transform=pose(None, at))
    ro = rng.uniform(0.015, 0.019)  # the ring: an annulus with upright walls
    ri = ro - rng.uniform(0.009, 0.011)
    ring = ring_band(ri, ro, 0.0, ri, ro, th + 0.002, 32)
    m.add(ring, 2, transform=pose(None, (-ls / 2 - ro + 0.003, 0, 0)))
    return m


def pliers(rng) -> Mesh:
    """Pliers lying flat: two tapered jaws (+x), a pivot boss standing proud of the arms, two
    handles spreading towards -x."""
    m = Mesh.empty()
    rj, hj = rng.uniform(0.011, 0.014), rng.uniform(0.02, 0.026)
    z0 = rng.uniform(0.003, 0.005)
    z1 = z0 + rng.uniform(0.008, 0.01)
    m.add(frustum(rj, rj, hj, 24), 1)
    lj, w0, w1 = rng.uniform(0.04, 0.06), rng.uniform(0.014, 0.018), rng.uniform(0.004, 0.006)
    for s in (-1, 1):
        jaw = np.array([[0, 0], [lj, 0], [lj, s * w1 / 2], [0, s * w0 / 2]]) + np.array(
            [0, s * 5e-4]
        )
        m.add(extrude(jaw, z0, z1), 0, transform=pose(None, (rj * 0.5, 0, 0)))
    lh, wh = rng.uniform(0.1, 0.13), rng.uniform(0.012, 0.016)
    a = rng.uniform(0.12, 0.2)
    for s in (-1, 1):
        centre = (-(lh / 2) * np.cos(a), s * (lh / 2) * np.sin(a), (z0 + z1) / 2)
        m.add(box((lh, wh, z1 - z0 + 0.003)), 2, transform=pose(rot_z(-s * a), centre))
    return m


def tongs(rng) -> Mesh:
    """Kitchen tongs lying on their side: a hinge block (-x), two spring arms on edge
    diverging towards +x, wider tips."""
    m = Mesh.empty()
    hgt, ta = rng.uniform(0.014, 0.02), rng.uniform(0.0025, 0.004)
    la, a = rng.uniform(0.17, 0.23), rng.uniform(0.1, 0.14)
    rh = rng.uniform(0.011, 0.014)
    m.add(frustum(rh, rh, hgt + rng.uniform(0.004, 0.008), 20), 2)
    lt, tt = rng.uniform(0.03, 0.045), rng.uniform(0.006, 0.01)
    ht = hgt * rng.uniform(1.1, 1.3)
    for s in (-1, 1):
        rot = rot_z(s * a)
        arm = (la / 2 * np.cos(a), s * la / 2 * np.sin(a), hgt / 2 + 0.001)
        m.add(box((la, ta, hgt)), 1, transform=pose(rot, arm))
        d = la + lt / 2 - 0.003
        tip = (d * np.cos(a), s * (d * np.sin(a) + (tt - ta) / 2), ht / 2)
        m.add(box((lt, tt, ht)), 0, transform=pose(rot, tip))
    return m


def toothbrush(rng) -> Mesh:
    """Toothbrush lying on its back: a flat handle (-x), a thin neck, a head with its bristle
    block facing up."""
    m = Mesh.empty()
    lh, wh, hh = rng.uniform(0.09, 0.11), rng.uniform(0.013, 0.017), rng.uniform(0.015, 0.019)
    m.add(box((lh, wh, hh)), 2, transform=pose(None, (-lh / 2, 0, hh / 2)))
    rn, ln = rng.uniform(0.0055, 0.007), rng.uniform(0.04, 0.055)
    m.add(along_x(ln, rn, rn * 0.85, 14), 1, transform=pose(None, (-0.002, 0, hh / 2)))
    lhd, whd = rng.uniform(0.024, 0.03), rng.uniform(0.011, 0.014)
    tp, hb = rng.uniform(0.004, 0.005), rng.uniform(0.009, 0.012)
    x = ln - 0.004 + lhd / 2
    m.add(box((lhd, whd, tp)), 0, transform=pose(None, (x, 0, hh / 2)))
    tuft = box((lhd * 0.9, whd * 0.85, hb))
    m.add(tuft, 0, transform=pose(None, (x, 0, hh / 2 + tp / 2 + hb / 2 - 0.001)))
    return m


def sprayer(rng) -> Mesh:
    """Trigger spray bottle standing upright: a bottle and spray head (body), a trigger
    hanging in front of the bottle, a twist nozzle at the head's front (+x)."""
    m = Mesh.empty()
    rb, hb = rng.uniform(0.028, 0.033), rng.uniform(0.13, 0.18)
    m.add(frustum(rb, rb * rng.uniform(0.95, 1.0), hb, 32), 0)
    rn, hs, hc = rng.uniform(0.013, 0.016), rng.uniform(0.015, 0.025), rng.uniform(0.015, 0.02)
    m.add(frustum(rb * 0.97, rn, hs, 32), 0, transform=pose(None, (0, 0, hb - 0.001)))
    m.add(
        frustum(rn + 0.002, rn + 0.002, hc, 20), 0, transform=pose(None, (0, 0, hb + hs - 0.002))
    )
    lx = rb + rn + rng.uniform(0.035, 0.045)
    wy, hz = rng.uniform(0.018, 0.022), rng.uniform(0.025, 0.032)
    z_h = hb + hs + hc - 0.004
    x0 = -rn - 0.005
    m.add(box((lx, wy, hz)), 0, transform=pose(None, (x0 + lx / 2, 0, z_h + hz / 2)))
    ln, wn = rng.uniform(0.014, 0.02), wy + rng.uniform(0.005, 0.008)
    nozzle = box((ln, wn, hz * rng.uniform(0.75, 0.9)))
    m.add(nozzle, 2, transform=pose(None, (x0 + lx + ln / 2 - 0.002, 0, z_h + hz / 2)))
    tx, ty, tz = rng.uniform(0.008, 0.011), rng.uniform(0.012, 0.016), rng.uniform(0.04, 0.05)
    tilt = rng.uniform(0.1, 0.25)  # the trigger's foot leans forward
    at = (x0 + lx - 0.014 + np.sin(tilt) * tz / 2, 0, z_h - tz / 2 * np.cos(tilt) + 0.003)
    m.add(box((tx, ty, tz)), 1, transform=pose(rot_y(-tilt), at))
    return m


def hairdryer(rng) -> Mesh:
    """Hair dryer lying on its side: a cylindrical body along x, a nozzle (+x), the handle
    lying on the table, leaving the body towards -y."""
    m = Mesh.empty()
    rb, lb = rng.uniform(0.028, 0.033), rng.uniform(0.11, 0.15)
    m.add(
        along_x(lb, rb * rng.uniform(0.9, 1.0), rb, 28), 0, transform=pose(None, (-lb / 2, 0, rb))
    )
    ln, rn = rng.uniform(0.045, 0.065), rb * rng.uniform(0.55, 0.7)
    m.add(along_x(ln, rb * 0.85, rn, 24), 1, transform=pose(None, (lb / 2 - 0.002, 0, rb)))
    wx, lh, th = rng.uniform(0.026, 0.032), rng.uniform(0.08, 0.11), rng.uniform(0.022, 0.028)
    xh, yaw = rng.uniform(-0.02, 0.01), rng.uniform(-0.3, 0.0)
    centre = (xh + np.sin(yaw) * lh / 2, -(rb * 0.5 + np.cos(yaw) * lh / 2), th / 2)
    m.add(box((wx, lh, th)), 2, transform=pose(rot_z(yaw), centre))
    return m
