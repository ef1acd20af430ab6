"""The oracle reveals only what it is asked and counts it."""

import numpy as np
import pytest

from al_research.experiment.oracle import Oracle


def test_labels_only_what_it_is_asked_and_counts_them():
    oracle = Oracle(np.array([3, 1, 4, 1, 5, 9]))
    assert oracle.label_manually(np.array([4, 0])).tolist() == [5, 3]
    assert oracle.spent == 2
    assert oracle.labelled_indices.tolist() == [0, 4]
    assert oracle.label_manually(np.array([2])).tolist() == [4]
    assert oracle.spent == 3


def test_audit_costs_nothing():
    oracle = Oracle(np.array([3, 1, 4]))
    assert oracle.audit(np.array([2, 1])).tolist() == [4, 1]
    assert oracle.spent == 0


def test_rejects_bad_requests():
    oracle = Oracle(np.array([3, 1, 4]))
    with pytest.raises(IndexError):
        oracle.label_manually(np.array([3]))
    with pytest.raises(ValueError):
        oracle.label_manually(np.array([1, 1]))


def test_labels_cannot_be_changed_through_the_oracle():
    labels = np.array([3, 1, 4])
    oracle = Oracle(labels)
    labels[0] = 7
    assert oracle.label_manually(np.array([0])).tolist() == [3]
