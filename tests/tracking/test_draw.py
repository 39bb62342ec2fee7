"""Track videos: each box labelled `#id class score`, readable and inside the frame."""

from __future__ import annotations

import numpy as np

from mistd.tracking.draw import MARGIN, draw_tracks, track_color, track_label
from mistd.tracking.tracker import Track


def _track(track_id: int, box, label: int = 0, score: float = 0.874) -> Track:
    box = np.asarray(box, float)
    centre = (box[:2] + box[2:]) / 2
    return Track(
        track_id=track_id,
        box=box,
        score=score,
        detection_score=score,
        label=label,
        confirmed=True,
        hits=5,
        misses=0,
        age=5,
        velocity=np.zeros(2),
        trail=np.stack([centre - [4, 0], centre]),
    )


def test_the_label_reads_id_class_and_score():
    names = ["airplane", "bird", "drone", "helicopter"]
    assert track_label(_track(3, [10, 10, 20, 20], label=2), names) == "#3 drone 0.87"
    assert (
        track_label(_track(12, [0, 0, 4, 4], label=0, score=0.5), ["target"]) == "#12 target 0.50"
    )
    # no names (or an id beyond them): the class id stands in
    assert track_label(_track(1, [0, 0, 4, 4], label=5), names) == "#1 5 0.87"
    assert track_label(_track(1, [0, 0, 4, 4], label=1)) == "#1 1 0.87"


def test_labels_are_drawn_above_the_box_or_below_it_at_the_top_edge():
    image = np.zeros((120, 160, 3), np.uint8)
    low = _track(1, [60, 70, 70, 80])
    draw_tracks(image, [low], ["target"])
    colour = np.array(track_color(1))
    # the box, MARGIN px outside the track's box
    assert (image[70 - MARGIN, 60 - MARGIN : 70 + MARGIN] == colour).all(axis=1).any()
    # the label: text in the track's colour on a dark plate in the rows just above the box
    above = image[70 - MARGIN - 16 : 70 - MARGIN - 1, 55:140]
    assert (np.abs(above.astype(int) - colour).sum(axis=2) < 60).sum() > 20
    assert (above == 0).all(axis=2).sum() > 50  # the plate
    # a box at the top edge: no room above, the label goes below it
    image = np.zeros((120, 160, 3), np.uint8)
    draw_tracks(image, [_track(2, [60, 2, 70, 12])], ["target"])
    below = image[12 + MARGIN + 1 : 12 + MARGIN + 17, 55:140]
    assert (np.abs(below.astype(int) - np.array(track_color(2))).sum(axis=2) < 60).sum() > 20
    # a box at the right edge: the label stays inside the frame
    image = np.zeros((120, 160, 3), np.uint8)
    draw_tracks(image, [_track(3, [150, 60, 158, 68], score=0.99)], ["helicopter"])
    assert image[:, :150].any()  # shifted left to fit
