"""Prometheus' text exposition format (0.0.4), read the way a test needs it:
a parser, and a scrape of a server's /metrics."""

import re
import urllib.error
import urllib.request

# Ceiling for one HTTP request.
HTTP_TIMEOUT_S = 10

# The text exposition format 0.0.4: `name{label="value",...} value [ms]`.
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)"
                     r"(?:[ \t]+-?\d+)?")
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*'
                    r'"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")


class Exposition:
    """A parsed /metrics page: every sample by name and labels, and each
    family's TYPE and HELP. Raises ValueError on a line that is not in the
    format and on a sample or TYPE given twice."""

    def __init__(self, text):
        self.text = text
        self.samples = {}  # (name, frozenset of (label, value)) -> float
        self.types = {}
        self.helps = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                self._comment(number, line)
                continue
            match = _SAMPLE.fullmatch(line)
            if match is None:
                raise ValueError(f"line {number} is not a sample: {line!r}")
            name, labels, value = match.groups()
            key = (name, frozenset(self._labels(number, labels or "")))
            if key in self.samples:
                raise ValueError(f"line {number} repeats a sample: {line!r}")
            try:
                # float() reads +Inf, -Inf and NaN in any case, as Go does.
                self.samples[key] = float(value)
            except ValueError:
                raise ValueError(f"line {number}: bad value: {line!r}")

    def _comment(self, number, line):
        parts = line.split(None, 3)
        if len(parts) < 3 or parts[1] not in ("TYPE", "HELP"):
            return  # Any other comment is allowed.
        table = self.types if parts[1] == "TYPE" else self.helps
        if parts[2] in table:
            raise ValueError(f"line {number}: second {parts[1]} of {parts[2]}")
        table[parts[2]] = parts[3] if len(parts) > 3 else ""

    @staticmethod
    def _labels(number, text):
        labels = {}
        position = 0
        while position < len(text):
            match = _LABEL.match(text, position)
            if match is None:
                raise ValueError(f"line {number}: bad labels {{{text}}}")
            name, value = match.group(1), _ESCAPE.sub(
                lambda m: "\n" if m.group(1) == "n" else m.group(1),
                match.group(2))
            if name in labels:
                raise ValueError(f"line {number}: label {name} twice")
            labels[name] = value
            position = match.end()
        return labels.items()

    def series(self, name, **labels):
        """{labels as a frozenset: value} of the samples named `name` whose
        labels include `labels`."""
        return {
            key: value for (sample, key), value in self.samples.items()
            if sample == name and labels.items() <= dict(key).items()
        }

    def value(self, name, **labels):
        """The value of the sample with exactly these name and labels."""
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise AssertionError(
                f"no sample {name}{labels}; samples of {name}: "
                f"{[dict(k) for k in self.series(name)]}")
        return self.samples[key]

    def by_label(self, name, label, **labels):
        """{value of `label`: sample value} over series(name, **labels)."""
        return {
            dict(key)[label]: value
            for key, value in self.series(name, **labels).items()
        }

    def histogram_problems(self):
        """What breaks the histogram rules: buckets must not decrease as le
        grows, the last must be le="+Inf" and equal _count, and each series
        needs a _sum."""
        problems = []
        for family, kind in self.types.items():
            if kind != "histogram":
                continue
            groups = {}
            for key, value in self.series(f"{family}_bucket").items():
                labels = dict(key)
                le = labels.pop("le")
                groups.setdefault(frozenset(labels.items()), []).append(
                    (float(le), le, value))
            if not groups:
                problems.append(f"{family}: no buckets")
            for labels, buckets in groups.items():
                where = f"{family}{dict(labels)}"
                buckets.sort()
                counts = [count for _, _, count in buckets]
                if counts != sorted(counts):
                    problems.append(f"{where}: buckets decrease: {buckets}")
                if buckets[-1][1] != "+Inf":
                    problems.append(f"{where}: no +Inf bucket")
                count = self.samples.get((f"{family}_count", labels))
                if count != buckets[-1][2]:
                    problems.append(f"{where}: _count {count} != +Inf "
                                    f"bucket {buckets[-1][2]}")
                if (f"{family}_sum", labels) not in self.samples:
                    problems.append(f"{where}: no _sum")
        return problems


def http_get(url):
    """Returns (status, content type, body) of a GET; HTTP errors too."""
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return (response.status, response.headers["Content-Type"],
                    response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode(
            "utf-8", "replace")


def scrape(test, server):
    """GETs the server's /metrics; asserts it answered; returns the text."""
    status, content_type, body = http_get(
        f"http://127.0.0.1:{server.metrics_port}/metrics")
    test.assertEqual(status, 200, body)
    test.assertTrue(content_type.startswith("text/plain"), content_type)
    return body
