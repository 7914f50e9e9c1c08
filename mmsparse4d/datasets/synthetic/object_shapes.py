"""Objects built from parts, so that an image carries what a real camera sees of them.

A plain box looks the same at yaw and yaw + pi and makes the three humanoid classes differ
by centimetres. With ``shapes='parts'`` each class is drawn as a few boxes inside its
ground-truth box: a forklift's counterweight body, overhead guard, mast and forks (its
front is the fork end); a person's two legs, torso and head; the humanoid robots' legs
(the Digit's set back, bent the other way), boxy torso and sensor head; the robots' wheels
and sensor deck. The ground-truth box stays the whole object's box.

Each part is (centre, size, tone) in the object's box: centre and size as fractions of the
box's extents (along its heading x, lateral y, height z; the centre from the box's centre,
in [-0.5, 0.5]) and tone ``'body'`` (the object's colour), ``'accent'`` (its class's accent
colour) or ``'dark'`` (wheels, mast, forks, legs of the robots).
"""

import numpy as np

DARK = np.array([0.12, 0.12, 0.13])
SHAPES = ('boxes', 'parts')

_PERSON = (
    ((0.0, 0.2, -0.27), (0.5, 0.3, 0.46), 'body'),
    ((0.0, -0.2, -0.27), (0.5, 0.3, 0.46), 'body'),
    ((0.0, 0.0, 0.12), (0.8, 1.0, 0.34), 'body'),
    ((0.0, 0.0, 0.4), (0.55, 0.4, 0.2), 'accent'),
)

PARTS = {
    'Person': _PERSON,
    'Forklift': (
        ((-0.12, 0.0, -0.3), (0.72, 1.0, 0.4), 'body'),  # counterweight body
        ((-0.12, 0.0, 0.47), (0.5, 0.9, 0.06), 'accent'),  # overhead guard roof
        ((-0.34, 0.42, 0.18), (0.04, 0.06, 0.58), 'dark'),  # guard posts
        ((-0.34, -0.42, 0.18), (0.04, 0.06, 0.58), 'dark'),
        ((0.1, 0.42, 0.18), (0.04, 0.06, 0.58), 'dark'),
        ((0.1, -0.42, 0.18), (0.04, 0.06, 0.58), 'dark'),
        ((0.3, 0.0, 0.0), (0.05, 0.75, 1.0), 'dark'),  # mast
        ((0.41, 0.22, -0.48), (0.18, 0.08, 0.04), 'dark'),  # forks
        ((0.41, -0.22, -0.48), (0.18, 0.08, 0.04), 'dark'),
    ),
    'NovaCarter': (
        ((0.0, 0.0, 0.05), (1.0, 1.0, 0.6), 'body'),
        ((0.32, 0.42, -0.3), (0.25, 0.16, 0.4), 'dark'),
        ((0.32, -0.42, -0.3), (0.25, 0.16, 0.4), 'dark'),
        ((-0.32, 0.42, -0.3), (0.25, 0.16, 0.4), 'dark'),
        ((-0.32, -0.42, -0.3), (0.25, 0.16, 0.4), 'dark'),
        ((0.25, 0.0, 0.42), (0.3, 0.4, 0.16), 'accent'),  # sensor at the front
    ),
    'Transporter': (
        ((0.0, 0.0, 0.1), (1.0, 1.0, 0.6), 'body'),
        ((0.0, 0.0, 0.42), (0.94, 0.94, 0.16), 'accent'),
        ((0.38, 0.4, -0.35), (0.15, 0.12, 0.3), 'dark'),
        ((0.38, -0.4, -0.35), (0.15, 0.12, 0.3), 'dark'),
        ((-0.38, 0.4, -0.35), (0.15, 0.12, 0.3), 'dark'),
        ((-0.38, -0.4, -0.35), (0.15, 0.12, 0.3), 'dark'),
        ((0.47, 0.0, 0.15), (0.06, 0.5, 0.3), 'dark'),  # bumper at the front
    ),
    'FourierGR1T2': (
        ((0.0, 0.25, -0.27), (0.55, 0.25, 0.46), 'dark'),
        ((0.0, -0.25, -0.27), (0.55, 0.25, 0.46), 'dark'),
        ((0.0, 0.0, 0.1), (0.9, 1.0, 0.3), 'body'),
        ((0.0, 0.0, 0.38), (0.6, 0.45, 0.24), 'accent'),
    ),
    'AgilityDigit': (
        ((-0.25, 0.22, -0.27), (0.35, 0.22, 0.46), 'dark'),  # legs set back
        ((-0.25, -0.22, -0.27), (0.35, 0.22, 0.46), 'dark'),
        ((0.1, 0.0, 0.14), (0.8, 1.0, 0.36), 'body'),
        ((0.25, 0.0, 0.4), (0.35, 0.55, 0.14), 'accent'),  # sensor head at the front
    ),
}


def check_shapes(shapes: str) -> str:
    if shapes not in SHAPES:
        raise ValueError(f'shapes must be one of {SHAPES}, got {shapes!r}')
    return shapes
