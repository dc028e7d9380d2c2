"""The one exception the data layer raises."""

from __future__ import annotations


class DataError(ValueError):
    """A trace file, or a request for one, does not meet what the data layer expects.

    The message always names the file, where in it the problem is (the 1-based data row together with the
    file line, which is one more because of the header, or the timestamp) and what was expected. The data
    layer never fills, clips or drops values to get past a problem; it raises this instead.
    """
