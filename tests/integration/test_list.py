"""GET /counters?prefix=&limit=&after= : sorting, paging, validation."""

import concurrent.futures
import unittest
import urllib.parse
import uuid

from counterd_harness import ServerTestCase


class ListTest(ServerTestCase):

    def make(self, names, value_of=lambda i: i):
        """Creates |names| (values from |value_of|) with a few threads."""
        def put(item):
            i, name = item
            with self.server.client() as c:
                r = c.put(f"/counters/{name}", json={"value": value_of(i)})
                self.assertEqual(r.status, 201, repr(r))
                return r.json()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            return list(ex.map(put, enumerate(names)))

    def page(self, **params):
        r = self.c.get("/counters?" + urllib.parse.urlencode(params))
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.content_type, "application/json", repr(r))
        doc = r.json()
        self.assertEqual(set(doc), {"counters", "next"}, repr(r))
        self.assertIsInstance(doc["counters"], list)
        self.assertTrue(doc["next"] is None or isinstance(doc["next"], str), repr(r))
        return doc

    def prefix(self):
        return f"L{uuid.uuid4().hex[:8]}"

    def test_walk_every_counter_exactly_once_sorted(self):
        p = self.prefix()
        # Mixed characters so that the sort order is byte order, not locale.
        suffixes = ["a", "B", "b", "Z", "0", "9", ".", "-", "_", ":", "aa", "a:1", "a.1",
                    "a-1", "a_1", "A_", "zz", "0:0", "x" * 50, "m", "M", "n.", "n-", "n_", "q"]
        names = [f"{p}{s}" for s in suffixes]
        created = {d["name"]: d for d in self.make(names)}
        seen, after, pages = [], None, 0
        while True:
            params = {"prefix": p, "limit": 7}
            if after is not None:
                params["after"] = after
            doc = self.page(**params)
            pages += 1
            self.assertLessEqual(len(doc["counters"]), 7)
            seen += doc["counters"]
            if doc["next"] is None:
                break
            self.assertEqual(doc["next"], doc["counters"][-1]["name"],
                             "next is the last name returned")
            after = doc["next"]
            self.assertLess(pages, 20, "paging does not terminate")
        self.assertEqual([c["name"] for c in seen], sorted(names), "sorted by name, once each")
        self.assertEqual(pages, 4)
        for c in seen:
            self.assertEqual(c, created[c["name"]], "list entries are full counters")

    def test_default_limit_is_100(self):
        p = self.prefix()
        names = [f"{p}-{i:04d}" for i in range(105)]
        self.make(names)
        doc = self.page(prefix=p)
        self.assertEqual(len(doc["counters"]), 100)
        self.assertEqual(doc["next"], names[99])
        doc = self.page(prefix=p, after=doc["next"])
        self.assertEqual([c["name"] for c in doc["counters"]], names[100:])
        self.assertIsNone(doc["next"])
        doc = self.page(prefix=p, limit=1000)
        self.assertEqual(len(doc["counters"]), 105)
        self.assertIsNone(doc["next"])
        doc = self.page(prefix=p, limit=1)
        self.assertEqual([c["name"] for c in doc["counters"]], names[:1])
        self.assertEqual(doc["next"], names[0])

    def test_exactly_full_last_page_has_null_next(self):
        p = self.prefix()
        names = [f"{p}{i}" for i in range(6)]
        self.make(names)
        d1 = self.page(prefix=p, limit=3)
        self.assertEqual(d1["next"], names[2])
        d2 = self.page(prefix=p, limit=3, after=d1["next"])
        self.assertEqual([c["name"] for c in d2["counters"]], names[3:])
        self.assertIsNone(d2["next"], "no counters follow, so next must be null")

    def test_prefix_and_after_filter(self):
        p, other = self.prefix(), self.prefix()
        mine = [f"{p}:{c}" for c in "abcde"]
        self.make(mine + [f"{other}:{c}" for c in "abc"] + [f"{p[:-1]}"])
        doc = self.page(prefix=p)
        self.assertEqual([c["name"] for c in doc["counters"]], mine)
        doc = self.page(prefix=p, after=f"{p}:b")
        self.assertEqual([c["name"] for c in doc["counters"]], mine[2:])
        # |after| need not be an existing name.
        doc = self.page(prefix=p, after=f"{p}:bb")
        self.assertEqual([c["name"] for c in doc["counters"]], mine[2:])
        doc = self.page(prefix=p, after=f"{p}:e")
        self.assertEqual(doc, {"counters": [], "next": None})
        doc = self.page(prefix=f"{p}:c")
        self.assertEqual([c["name"] for c in doc["counters"]], [f"{p}:c"])
        doc = self.page(prefix=self.prefix())
        self.assertEqual(doc, {"counters": [], "next": None})

    def test_no_prefix_lists_everything(self):
        p = self.prefix()
        self.make([f"{p}x", f"{p}y"])
        everything = self.list_all()
        names = [c["name"] for c in everything]
        self.assertEqual(names, sorted(set(names)))
        self.assertIn(f"{p}x", names)
        self.assertIn(f"{p}y", names)
        doc = self.page()  # no parameters at all
        self.assertEqual(doc["counters"], everything[:100])

    def test_deleted_counters_are_not_listed(self):
        p = self.prefix()
        self.make([f"{p}1", f"{p}2", f"{p}3"])
        self.assertEqual(self.c.delete(f"/counters/{p}2").status, 204)
        doc = self.page(prefix=p)
        self.assertEqual([c["name"] for c in doc["counters"]], [f"{p}1", f"{p}3"])

    def test_invalid_limit_is_400(self):
        for limit in ("0", "1001", "abc", "-1", "1.5", "99999999999999999999999", "10x"):
            with self.subTest(limit=limit):
                r = self.c.get(f"/counters?limit={limit}")
                self.assertProblem(r, 400, f"limit={limit}")

    def test_head_list(self):
        r = self.c.head("/counters?limit=5")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.body, b"")
        r = self.c.head("/counters?limit=0")
        self.assertEqual(r.status, 400, repr(r))
        self.assertEqual(r.body, b"")


if __name__ == "__main__":
    unittest.main()
