/* chronology._bestview: an incident's view as the projection stores it, in C.

   The reference is Python: `chronology.bestview.view_body`, which is `incident_view` (claims
   counted once and ordered, each field resolved, the incident's links, title, date, place and
   grade) followed by `IncidentView.content_json`. `view_body` here does the same steps in the
   same order with the same Python objects and writes the same JSON with the same orjson call,
   without building the `IncidentView` nobody reads when only the stored body is wanted (a
   rebuild makes one per incident). Fields are resolved by the `resolve_distinct` it is
   configured with (`chronology._resolution` in C, or the Python reference), so policies stay
   exactly as they are. tests/test_native_bestview.py holds the two to each other;
   CHRON_PURE_PYTHON=1 turns this module off. */

#include "_configure.h"

/* Claim's, FieldView's and Alternative's field positions, checked by configure(). */
static Py_ssize_t I_ID, I_FIELD, I_SOURCE_ID, I_RETRACTED, I_RANK, CLAIM_SIZE;
enum { F_FIELD, F_BEST, F_STATUS, F_SUPPORTING, F_DISSENTING, F_SOURCES, F_DISAGREEMENT, F_ALTERNATIVES,
       F_LOW, F_HIGH, F_QUALIFIER, F_HEDGE, F_RETRACTED, FIELD_VIEW_SIZE };
static const char *FIELD_VIEW_FIELDS[FIELD_VIEW_SIZE] = {
    "field", "best", "status", "supporting", "dissenting", "number_of_sources", "disagreement", "alternatives",
    "low", "high", "qualifier", "hedge", "retracted",
};
static const char *ALTERNATIVE_FIELDS[3] = {"value", "claims", "sources"};

static PyObject *Claim, *balanced, *resolve, *field_order, *undated, *dumps, *dumps_options, *EMPTY;
static PyObject *id_namespace, *incident_prefix; /* ids.NAMESPACE.bytes and ids.INCIDENT_PREFIX (bytes) */
static PyObject *orders; /* field name -> bestview.field_order(name): the same for every view */
#define ORDERS_KEPT_AT_MOST 4096
static PyObject *S_int, *S_relation, *S_other, *S_publisher, *S_reliability, *S_earliest, *S_deprecated;
static PyObject *S_normal, *S_disputed, *S_confirmed, *S_contested, *S_fair, *S_weak, *S_AB, *S_dash, *S_space;
static PyObject *S_title, *S_date, *S_location, *S_perpetrator, *S_responds_to, *S_part_of, *S_follows;
static PyObject *K_slug, *K_id, *K_grade, *K_fields, *K_claims, *K_sources, *K_aliases, *K_links;
static PyObject *K_field_view[FIELD_VIEW_SIZE];
static UuidMaker uuids;
static int configured = 0;

#define ITEM(claim, index) PyTuple_GET_ITEM((claim), (index))

/* Claim.counts: not retracted and not deprecated. */
static int counts(PyObject *claim) {
    return claim_counts(claim, I_RETRACTED, I_RANK, S_deprecated);
}

/* The values of `by_int` (a dict keyed by ints) in the order of their keys, as a list. */
static PyObject *values_in_key_order(PyObject *by_int) {
    PyObject *keys = PyDict_Keys(by_int);
    if (keys == NULL || PyList_Sort(keys) < 0) {
        Py_XDECREF(keys);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys);
    PyObject *values = PyList_New(n);
    for (Py_ssize_t i = 0; values != NULL && i < n; i++) {
        PyObject *value = PyDict_GetItemWithError(by_int, PyList_GET_ITEM(keys, i));
        if (value == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "a key went missing");
            Py_CLEAR(values);
            break;
        }
        PyList_SET_ITEM(values, i, Py_NewRef(value));
    }
    Py_DECREF(keys);
    return values;
}

/* sorted({claim.id.int: claim for claim in claims}.values(), key=claim_order): each claim once
   (the last one given of an id), in the order of their ids. */
static PyObject *claims_once_in_order(PyObject *claims) {
    PyObject *by_id = PyDict_New(), *iterator = by_id ? PyObject_GetIter(claims) : NULL, *claim;
    if (iterator == NULL) {
        Py_XDECREF(by_id);
        return NULL;
    }
    while ((claim = PyIter_Next(iterator)) != NULL) {
        int ok = -1;
        if (!PyTuple_Check(claim) || PyTuple_GET_SIZE(claim) != CLAIM_SIZE) {
            PyErr_SetString(PyExc_TypeError, "view_body takes Claim records");
        } else {
            PyObject *key = uuid_int(&uuids, ITEM(claim, I_ID), S_int);
            ok = key ? PyDict_SetItem(by_id, key, claim) : -1;
            Py_XDECREF(key);
        }
        Py_DECREF(claim);
        if (ok < 0) break;
    }
    Py_DECREF(iterator);
    PyObject *ordered = PyErr_Occurred() ? NULL : values_in_key_order(by_id);
    Py_DECREF(by_id);
    return ordered;
}

/* bestview.field_order(name) (a new reference), asked of Python once a name rather than once a
   field of every view. */
static PyObject *order_of(PyObject *name) {
    PyObject *key = PyDict_GetItemWithError(orders, name);
    if (key != NULL) return Py_NewRef(key);
    if (PyErr_Occurred() || (key = PyObject_CallOneArg(field_order, name)) == NULL) return NULL;
    if (PyDict_GET_SIZE(orders) >= ORDERS_KEPT_AT_MOST) PyDict_Clear(orders); /* x- names without end */
    if (PyDict_SetItem(orders, name, key) < 0) Py_CLEAR(key);
    return key;
}

/* bestview.field_order(name) for each field of `by_field`, then the names in that order. */
static PyObject *fields_in_order(PyObject *by_field) {
    PyObject *keyed = PyList_New(0), *name;
    Py_ssize_t at = 0;
    while (keyed != NULL && PyDict_Next(by_field, &at, &name, NULL)) {
        PyObject *key = order_of(name);
        PyObject *pair = key ? PyTuple_Pack(2, key, name) : NULL;
        Py_XDECREF(key);
        if (pair == NULL || PyList_Append(keyed, pair) < 0) Py_CLEAR(keyed);
        Py_XDECREF(pair);
    }
    if (keyed == NULL || PyList_Sort(keyed) < 0) {
        Py_XDECREF(keyed);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keyed); i++) /* (key, name) -> name */
        PyList_SetItem(keyed, i, Py_NewRef(PyTuple_GET_ITEM(PyList_GET_ITEM(keyed, i), 1)));
    return keyed;
}

/* resolve_distinct(name, claims, sources, policy), checked to be a FieldView-shaped tuple. */
static PyObject *resolved_field(PyObject *name, PyObject *claims, PyObject *sources, PyObject *policy) {
    PyObject *args[4] = {name, claims, sources, policy};
    PyObject *view = PyObject_Vectorcall(resolve, args, 4, NULL);
    if (view != NULL && (!PyTuple_Check(view) || PyTuple_GET_SIZE(view) != FIELD_VIEW_SIZE)) {
        PyErr_SetString(PyExc_TypeError, "resolve_distinct did not give a FieldView");
        Py_CLEAR(view);
    }
    return view;
}

/* The incident's links: its analysts' links, then each (relation, other) a relation field's
   best value names, sorted. */
static PyObject *links_of(PyObject *links, PyObject *resolved) {
    PyObject *pairs = PySet_New(NULL), *iterator = pairs ? PyObject_GetIter(links) : NULL, *link;
    if (iterator == NULL) goto fail;
    while ((link = PyIter_Next(iterator)) != NULL) {
        PyObject *relation = PyObject_GetAttr(link, S_relation);
        PyObject *other = relation ? PyObject_GetAttr(link, S_other) : NULL;
        PyObject *pair = other ? PyTuple_Pack(2, relation, other) : NULL;
        int ok = pair ? PySet_Add(pairs, pair) : -1;
        Py_DECREF(link);
        Py_XDECREF(relation);
        Py_XDECREF(other);
        Py_XDECREF(pair);
        if (ok < 0) break;
    }
    Py_CLEAR(iterator);
    if (PyErr_Occurred()) goto fail;
    PyObject *relations[3] = {S_responds_to, S_part_of, S_follows};
    for (int r = 0; r < 3; r++) {
        PyObject *view = PyDict_GetItemWithError(resolved, relations[r]);
        if (view == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        int named = PyObject_IsTrue(PyTuple_GET_ITEM(view, F_BEST));
        if (named < 0) goto fail;
        if (!named) continue;
        PyObject *others = PyObject_GetIter(PyTuple_GET_ITEM(view, F_BEST)), *other;
        if (others == NULL) goto fail;
        while ((other = PyIter_Next(others)) != NULL) {
            PyObject *pair = PyTuple_Pack(2, relations[r], other);
            int ok = pair ? PySet_Add(pairs, pair) : -1;
            Py_DECREF(other);
            Py_XDECREF(pair);
            if (ok < 0) break;
        }
        Py_DECREF(others);
        if (PyErr_Occurred()) goto fail;
    }
    PyObject *sorted = PySequence_List(pairs);
    Py_DECREF(pairs);
    if (sorted != NULL && PyList_Sort(sorted) < 0) Py_CLEAR(sorted);
    return sorted;
fail:
    Py_XDECREF(iterator);
    Py_XDECREF(pairs);
    return NULL;
}

/* The incident's claims with every retraction and deprecation lifted
   (`c._replace(retracted=False, rank="normal")`), and title, date and place resolved from them:
   what an incident whose every claim was retracted is still called, and when and where. */
static PyObject *revived_names(PyObject *ordered, PyObject *by_field, PyObject *sources, PyObject *policy) {
    PyObject *resolved = PyDict_New();
    Py_ssize_t n = PyList_GET_SIZE(ordered);
    PyObject *revived = PyList_New(n);
    if (resolved == NULL || revived == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *claim = PyList_GET_ITEM(ordered, i);
        PyObject *items = PyTuple_New(CLAIM_SIZE);
        if (items == NULL) goto fail;
        for (Py_ssize_t j = 0; j < CLAIM_SIZE; j++) PyTuple_SET_ITEM(items, j, Py_NewRef(ITEM(claim, j)));
        Py_SETREF(((PyTupleObject *)items)->ob_item[I_RETRACTED], Py_NewRef(Py_False));
        Py_SETREF(((PyTupleObject *)items)->ob_item[I_RANK], Py_NewRef(S_normal));
        PyObject *made = named_tuple_of(Claim, items); /* Claim(*items), as tuple.__new__(Claim, items) */
        Py_DECREF(items);
        if (made == NULL) goto fail;
        PyList_SET_ITEM(revived, i, made);
    }
    PyObject *names[3] = {S_title, S_date, S_location};
    for (int k = 0; k < 3; k++) {
        int present = PyDict_Contains(by_field, names[k]);
        if (present < 0) goto fail;
        if (!present) continue;
        PyObject *claims = PyList_New(0);
        for (Py_ssize_t i = 0; claims != NULL && i < n; i++) {
            PyObject *claim = PyList_GET_ITEM(revived, i);
            int same = PyObject_RichCompareBool(ITEM(claim, I_FIELD), names[k], Py_EQ);
            if (same < 0 || (same && PyList_Append(claims, claim) < 0)) Py_CLEAR(claims);
        }
        PyObject *view = claims ? resolved_field(names[k], claims, sources, policy) : NULL;
        Py_XDECREF(claims);
        int ok = view ? PyDict_SetItem(resolved, names[k], view) : -1;
        Py_XDECREF(view);
        if (ok < 0) goto fail;
    }
    Py_DECREF(revived);
    return resolved;
fail:
    Py_XDECREF(resolved);
    Py_XDECREF(revived);
    return NULL;
}

/* bestview._grade: contested, confirmed, fair or weak (a borrowed, interned string). */
static PyObject *grade(PyObject *resolved, PyObject *active, PyObject *sources) {
    PyObject *names[3] = {S_date, S_location, S_perpetrator};
    for (int k = 0; k < 3; k++) {
        PyObject *view = PyDict_GetItemWithError(resolved, names[k]);
        if (view == NULL) {
            if (PyErr_Occurred()) return NULL;
            continue;
        }
        int disputed = PyObject_RichCompareBool(PyTuple_GET_ITEM(view, F_STATUS), S_disputed, Py_EQ);
        if (disputed < 0) return NULL;
        if (disputed) return S_contested;
    }
    Py_ssize_t n = PyList_GET_SIZE(active);
    PyObject *publishers = PySet_New(NULL);
    for (Py_ssize_t i = 0; publishers != NULL && i < n; i++) {
        PyObject *source = source_by_id(sources, ITEM(PyList_GET_ITEM(active, i), I_SOURCE_ID));
        PyObject *publisher = source ? PyObject_GetAttr(source, S_publisher) : NULL;
        if (publisher == NULL || PySet_Add(publishers, publisher) < 0) Py_CLEAR(publishers);
        Py_XDECREF(source);
        Py_XDECREF(publisher);
    }
    if (publishers == NULL) return NULL;
    Py_ssize_t distinct = PySet_GET_SIZE(publishers);
    Py_DECREF(publishers);
    if (distinct >= 2) {
        PyObject *date = PyDict_GetItemWithError(resolved, S_date);
        if (date == NULL && PyErr_Occurred()) return NULL;
        if (date != NULL) {
            int confirmed = PyObject_RichCompareBool(PyTuple_GET_ITEM(date, F_STATUS), S_confirmed, Py_EQ);
            if (confirmed < 0) return NULL;
            if (confirmed) return S_confirmed;
        }
        return S_fair;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *source = source_by_id(sources, ITEM(PyList_GET_ITEM(active, i), I_SOURCE_ID));
        PyObject *reliability = source ? PyObject_GetAttr(source, S_reliability) : NULL;
        int trusted = reliability ? PySequence_Contains(S_AB, reliability) : -1; /* `in "AB"`, as Python has it */
        Py_XDECREF(source);
        Py_XDECREF(reliability);
        if (trusted < 0) return NULL;
        if (trusted) return S_fair;
    }
    return S_weak;
}

/* resolution.distinct_sources(claims): their sources, each once, in id order. */
static PyObject *distinct_sources(PyObject *ordered) {
    Py_ssize_t n = PyList_GET_SIZE(ordered);
    if (n == 1) return PyTuple_Pack(1, ITEM(PyList_GET_ITEM(ordered, 0), I_SOURCE_ID));
    PyObject *by_int = PyDict_New();
    for (Py_ssize_t i = 0; by_int != NULL && i < n; i++) {
        PyObject *source_id = ITEM(PyList_GET_ITEM(ordered, i), I_SOURCE_ID);
        PyObject *key = uuid_int(&uuids, source_id, S_int);
        if (key == NULL || PyDict_SetItem(by_int, key, source_id) < 0) Py_CLEAR(by_int);
        Py_XDECREF(key);
    }
    if (by_int == NULL) return NULL;
    PyObject *values = values_in_key_order(by_int);
    Py_DECREF(by_int);
    return values; /* a list where Python has a tuple: orjson writes both as one array */
}

/* The places of a view's ids (its claims' or its sources'), for `stored_field`: a list, and for
   a long one a dict from id to place. */
typedef struct {
    PyObject *ids, *index;
} Places;

#define SCANNED_UP_TO 64 /* ids in a list searched one by one rather than through a dict */

static int places_open(Places *places, PyObject *ids) {
    places->ids = ids;
    places->index = NULL;
    Py_ssize_t n = PyList_GET_SIZE(ids);
    if (n <= SCANNED_UP_TO) return 0;
    if ((places->index = PyDict_New()) == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *place = PyLong_FromSsize_t(i);
        int ok = place ? PyDict_SetItem(places->index, PyList_GET_ITEM(ids, i), place) : -1;
        Py_XDECREF(place);
        if (ok < 0) return -1;
    }
    return 0;
}

/* The place of `id`, as an int: the same object first (a field view holds its claims' own
   ids), then an equal one; KeyError, as the Python reference raises, if it is not there. */
static PyObject *place_of(Places *places, PyObject *id) {
    if (places->index != NULL) {
        PyObject *place = PyDict_GetItemWithError(places->index, id);
        if (place != NULL) return Py_NewRef(place);
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, id);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(places->ids);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyList_GET_ITEM(places->ids, i) == id) return PyLong_FromSsize_t(i);
    for (Py_ssize_t i = 0; i < n; i++) {
        int same = PyObject_RichCompareBool(PyList_GET_ITEM(places->ids, i), id, Py_EQ);
        if (same < 0) return NULL;
        if (same) return PyLong_FromSsize_t(i);
    }
    PyErr_SetObject(PyExc_KeyError, id);
    return NULL;
}

static PyObject *places_of(Places *places, PyObject *ids) {
    PyObject *given = PySequence_Fast(ids, "ids");
    if (given == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(given);
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *place = place_of(places, PySequence_Fast_GET_ITEM(given, i));
        if (place == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, place);
    }
    Py_DECREF(given);
    return list;
}

/* Whether a field view's low, high, qualifier or hedge holds what resolution.STORED_DEFAULTS
   says it holds when unset (None, None, "exact", None). */
static int is_default(int i, PyObject *value) {
    if (i != F_QUALIFIER) return value == Py_None;
    return PyUnicode_CheckExact(value) && PyUnicode_CompareWithASCIIString(value, "exact") == 0;
}

/* resolution.stored_field(view, claim_at, source_at): the field view as a list in FieldView
   order, its ids as their places among the view's claims and sources, the unset fields at its
   end left out. */
static PyObject *stored_field(PyObject *view, Places *claims, Places *sources) {
    PyObject *retracted = PyTuple_GET_ITEM(view, F_RETRACTED);
    int any_retracted = PyObject_IsTrue(retracted);
    if (any_retracted < 0) return NULL;
    Py_ssize_t size = FIELD_VIEW_SIZE;
    if (!any_retracted) {
        size = F_RETRACTED;
        while (size > F_LOW && is_default((int)size - 1, PyTuple_GET_ITEM(view, size - 1))) size--;
    }
    PyObject *stored = PyList_New(size);
    if (stored == NULL) return NULL;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PyTuple_GET_ITEM(view, i), *made;
        if (i == F_SUPPORTING || i == F_DISSENTING || i == F_RETRACTED) {
            made = places_of(claims, item);
        } else if (i == F_ALTERNATIVES) {
            PyObject *alternatives = PySequence_Fast(item, "alternatives");
            if (alternatives == NULL) goto fail;
            Py_ssize_t n = PySequence_Fast_GET_SIZE(alternatives);
            made = PyList_New(n);
            for (Py_ssize_t k = 0; made != NULL && k < n; k++) {
                PyObject *alternative = PySequence_Fast_GET_ITEM(alternatives, k), *parts = NULL;
                if (!PyTuple_Check(alternative) || PyTuple_GET_SIZE(alternative) != 3) {
                    PyErr_SetString(PyExc_TypeError, "an alternative is (value, claims, sources)");
                } else if ((parts = PyList_New(3)) != NULL) {
                    PyObject *at_claims = places_of(claims, PyTuple_GET_ITEM(alternative, 1));
                    PyObject *at_sources = at_claims ? places_of(sources, PyTuple_GET_ITEM(alternative, 2)) : NULL;
                    PyList_SET_ITEM(parts, 0, Py_NewRef(PyTuple_GET_ITEM(alternative, 0)));
                    PyList_SET_ITEM(parts, 1, at_claims ? at_claims : Py_NewRef(Py_None));
                    PyList_SET_ITEM(parts, 2, at_sources ? at_sources : Py_NewRef(Py_None));
                    if (at_sources == NULL) Py_CLEAR(parts);
                }
                if (parts == NULL) Py_CLEAR(made);
                else PyList_SET_ITEM(made, k, parts);
            }
            Py_DECREF(alternatives);
        } else {
            made = Py_NewRef(item);
        }
        if (made == NULL) goto fail;
        PyList_SET_ITEM(stored, i, made);
    }
    return stored;
fail:
    Py_DECREF(stored);
    return NULL;
}

/* --- the incident's id ------------------------------------------------------------------- */

/* SHA-1 (FIPS 180-4) of the `size` bytes at `data`, for the uuid5 below. */
static uint32_t rotate(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *block) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
               (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rotate(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rotate(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotate(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static int sha1(const unsigned char *data, size_t size, unsigned char digest[20]) {
    size_t padded = (size + 9 + 63) / 64 * 64; /* the message, 0x80, its bit length in 8 bytes */
    unsigned char *message = PyMem_Calloc(padded, 1);
    if (message == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(message, data, size);
    message[size] = 0x80;
    uint64_t bits = (uint64_t)size * 8;
    for (int i = 0; i < 8; i++) message[padded - 1 - i] = (unsigned char)(bits >> (8 * i));
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    for (size_t at = 0; at < padded; at += 64) sha1_block(h, message + at);
    PyMem_Free(message);
    for (int i = 0; i < 20; i++) digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
    return 0;
}

/* str(ids.incident_id(slug)): uuid5 of the incident prefix and the slug in Chronology's
   namespace, as the 36-character text orjson writes for a UUID. */
static PyObject *incident_id_text(PyObject *slug) {
    Py_ssize_t slug_size;
    const char *slug_bytes = PyUnicode_AsUTF8AndSize(slug, &slug_size);
    if (slug_bytes == NULL) return NULL;
    Py_ssize_t namespace_size = PyBytes_GET_SIZE(id_namespace), prefix_size = PyBytes_GET_SIZE(incident_prefix);
    size_t size = (size_t)(namespace_size + prefix_size + slug_size);
    unsigned char *name = PyMem_Malloc(size), digest[20];
    if (name == NULL) return PyErr_NoMemory();
    memcpy(name, PyBytes_AS_STRING(id_namespace), namespace_size);
    memcpy(name + namespace_size, PyBytes_AS_STRING(incident_prefix), prefix_size);
    memcpy(name + namespace_size + prefix_size, slug_bytes, slug_size);
    int ok = sha1(name, size, digest);
    PyMem_Free(name);
    if (ok < 0) return NULL;
    digest[6] = (unsigned char)((digest[6] & 0x0F) | 0x50); /* version 5 */
    digest[8] = (unsigned char)((digest[8] & 0x3F) | 0x80); /* the RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    char text[36];
    for (int i = 0, at = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text[at++] = '-';
        text[at++] = hex[digest[i] >> 4];
        text[at++] = hex[digest[i] & 0x0F];
    }
    return PyUnicode_FromStringAndSize(text, 36);
}

static PyObject *view_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    /* view_body(slug, claims, sources, links=(), aliases=(), policy=balanced)
       -> (sort date, content JSON), positional arguments only */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._bestview is not configured");
        return NULL;
    }
    if (nargs < 3 || nargs > 6 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "view_body(slug, claims, sources, links=(), aliases=(), policy=balanced)");
        return NULL;
    }
    PyObject *slug = args[0], *sources = args[2], *policy = nargs > 5 ? args[5] : balanced;
    PyObject *given_links = nargs > 3 ? args[3] : EMPTY, *given_aliases = nargs > 4 ? args[4] : EMPTY;
    PyObject *ordered = NULL, *by_field = NULL, *names = NULL, *views = NULL, *resolved = NULL, *active = NULL;
    PyObject *links = NULL, *content = NULL, *fields = NULL, *ids = NULL, *cited = NULL;
    PyObject *aliases = NULL, *id = NULL, *title = NULL, *body = NULL, *sort_date = NULL, *result = NULL;

    if ((ordered = claims_once_in_order(args[1])) == NULL || (by_field = PyDict_New()) == NULL ||
        (active = PyList_New(0)) == NULL)
        goto done;
    Py_ssize_t n = PyList_GET_SIZE(ordered);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *claim = PyList_GET_ITEM(ordered, i), *name = ITEM(claim, I_FIELD);
        PyObject *same = PyDict_GetItemWithError(by_field, name);
        if (same == NULL) {
            if (PyErr_Occurred()) goto done;
            same = PyList_New(0);
            int ok = same ? PyDict_SetItem(by_field, name, same) : -1;
            Py_XDECREF(same); /* by_field holds it */
            if (ok < 0) goto done;
        }
        int counted = counts(claim);
        if (PyList_Append(same, claim) < 0 || counted < 0 || (counted && PyList_Append(active, claim) < 0)) goto done;
    }
    if ((names = fields_in_order(by_field)) == NULL || (resolved = PyDict_New()) == NULL) goto done;
    Py_ssize_t n_fields = PyList_GET_SIZE(names);
    if ((views = PyList_New(n_fields)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < n_fields; i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        PyObject *view = resolved_field(name, PyDict_GetItem(by_field, name), sources, policy);
        if (view == NULL) goto done;
        PyList_SET_ITEM(views, i, view);
        if (PyDict_SetItem(resolved, PyTuple_GET_ITEM(view, F_FIELD), view) < 0) goto done;
    }
    if ((links = links_of(given_links, resolved)) == NULL) goto done;
    int retracted = PyList_GET_SIZE(active) == 0;
    if (retracted) Py_SETREF(resolved, revived_names(ordered, by_field, sources, policy));
    if (resolved == NULL) goto done;

    PyObject *title_view = PyDict_GetItemWithError(resolved, S_title);
    if (title_view == NULL && PyErr_Occurred()) goto done;
    int titled = title_view ? PyObject_IsTrue(PyTuple_GET_ITEM(title_view, F_BEST)) : 0;
    if (titled < 0) goto done;
    title = titled ? Py_NewRef(PyTuple_GET_ITEM(title_view, F_BEST)) : PyUnicode_Replace(slug, S_dash, S_space, -1);
    if (title == NULL) goto done;
    PyObject *grading = grade(resolved, active, sources);
    if (grading == NULL) goto done;
    PyObject *date_view = PyDict_GetItemWithError(resolved, S_date);
    if (date_view == NULL && PyErr_Occurred()) goto done;
    PyObject *place_view = PyDict_GetItemWithError(resolved, S_location);
    if (place_view == NULL && PyErr_Occurred()) goto done;
    PyObject *date = date_view ? PyTuple_GET_ITEM(date_view, F_BEST) : Py_None;
    PyObject *place = place_view ? PyTuple_GET_ITEM(place_view, F_BEST) : Py_None;

    if ((id = incident_id_text(slug)) == NULL || (fields = PyList_New(n_fields)) == NULL ||
        (ids = PyList_New(n)) == NULL || (cited = distinct_sources(ordered)) == NULL ||
        (aliases = PySequence_List(given_aliases)) == NULL || PyList_Sort(aliases) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) PyList_SET_ITEM(ids, i, Py_NewRef(ITEM(PyList_GET_ITEM(ordered, i), I_ID)));
    Places claim_places, source_places = {cited, NULL};
    if (PyTuple_Check(cited)) { /* one source: distinct_sources made a tuple */
        PyObject *listed = PySequence_List(cited);
        if (listed == NULL) goto done;
        Py_SETREF(cited, listed);
        source_places.ids = cited;
    }
    if (places_open(&claim_places, ids) < 0 || places_open(&source_places, cited) < 0) {
        Py_XDECREF(claim_places.index);
        Py_XDECREF(source_places.index);
        goto done;
    }
    int stored_all = 1;
    for (Py_ssize_t i = 0; stored_all && i < n_fields; i++) {
        PyObject *field = stored_field(PyList_GET_ITEM(views, i), &claim_places, &source_places);
        if (field == NULL) stored_all = 0;
        else PyList_SET_ITEM(fields, i, field);
    }
    Py_XDECREF(claim_places.index);
    Py_XDECREF(source_places.index);
    if (!stored_all) goto done;
    if ((content = PyDict_New()) == NULL) goto done;
    PyObject *keys[12] = {K_slug,   K_id,     S_title,  K_grade,   K_field_view[F_RETRACTED], S_date,
                          S_location, K_fields, K_claims, K_sources, K_aliases,                K_links};
    PyObject *values[12] = {slug,   id,     title, grading, retracted ? Py_True : Py_False, date,
                            place,  fields, ids,   cited,   aliases,                        links};
    for (int k = 0; k < 12; k++)
        if (PyDict_SetItem(content, keys[k], values[k]) < 0) goto done;
    PyObject *dump_args[1] = {content};
    PyObject *dumped = PyObject_VectorcallDict(dumps, dump_args, 1, dumps_options);
    if (dumped == NULL) goto done;
    body = dumped;
    int dated = PyObject_IsTrue(date);
    if (dated < 0) goto done;
    sort_date = dated ? PyObject_GetItem(date, S_earliest) : Py_NewRef(undated);
    if (sort_date == NULL) goto done;
    result = PyTuple_Pack(2, sort_date, body);
done:
    Py_XDECREF(ordered);
    Py_XDECREF(by_field);
    Py_XDECREF(names);
    Py_XDECREF(views);
    Py_XDECREF(resolved);
    Py_XDECREF(active);
    Py_XDECREF(links);
    Py_XDECREF(content);
    Py_XDECREF(fields);
    Py_XDECREF(ids);
    Py_XDECREF(cited);
    Py_XDECREF(aliases);
    Py_XDECREF(id);
    Py_XDECREF(title);
    Py_XDECREF(body);
    Py_XDECREF(sort_date);
    return result;
}

/* --- configuration ------------------------------------------------------------------------- */

static int same_fields(PyObject *type, const char **expected, Py_ssize_t size, const char *what) {
    PyObject *fields = PyObject_GetAttrString(type, "_fields");
    if (fields == NULL) return -1;
    int same = PyType_Check(type) && PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type) &&
               PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) >= size;
    for (Py_ssize_t i = 0; same && i < size; i++)
        same = PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(fields, i), expected[i]) == 0;
    same = same && PyTuple_GET_SIZE(fields) == size;
    Py_DECREF(fields);
    if (!same) {
        PyErr_Format(PyExc_TypeError, "configure(): %s is not the named tuple this module reads", what);
        return -1;
    }
    return 0;
}

static PyObject *configure(PyObject *module, PyObject *names) {
    /* configure(names): Claim, FieldView, Alternative, resolve_distinct, balanced, id_namespace, incident_prefix,
       field_order, UNDATED, dumps and dumps_options (as bestview.content_json calls it). */
    if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    PyObject *field_view = NULL, *alternative = NULL;
    if (take(names, "Claim", &Claim) < 0 || take(names, "FieldView", &field_view) < 0 ||
        take(names, "Alternative", &alternative) < 0 || take(names, "resolve_distinct", &resolve) < 0 || take(names, "balanced", &balanced) < 0 ||
        take(names, "id_namespace", &id_namespace) < 0 || take(names, "incident_prefix", &incident_prefix) < 0 ||
        take(names, "field_order", &field_order) < 0 ||
        take(names, "UNDATED", &undated) < 0 || take(names, "dumps", &dumps) < 0 ||
        take(names, "dumps_options", &dumps_options) < 0 || uuid_maker_configure(&uuids, names) < 0)
        goto fail;
    if (!PyBytes_CheckExact(id_namespace) || !PyBytes_CheckExact(incident_prefix)) {
        PyErr_SetString(PyExc_TypeError, "configure(): id_namespace and incident_prefix must be bytes");
        goto fail;
    }
    if (same_fields(field_view, FIELD_VIEW_FIELDS, FIELD_VIEW_SIZE, "FieldView") < 0 ||
        same_fields(alternative, ALTERNATIVE_FIELDS, 3, "Alternative") < 0)
        goto fail;
    Py_CLEAR(field_view);
    Py_CLEAR(alternative);
    Py_XSETREF(orders, PyDict_New()); /* a new field_order: its answers are not known */
    if (orders == NULL) return NULL;
    if (!PyDict_Check(dumps_options)) {
        PyErr_SetString(PyExc_TypeError, "configure(): dumps_options must be a dict");
        return NULL;
    }
    PyObject *claim_fields = PyObject_GetAttrString(Claim, "_fields");
    if (claim_fields == NULL) return NULL;
    CLAIM_SIZE = PySequence_Size(claim_fields);
    int ok = CLAIM_SIZE >= 0 && PyType_Check(Claim) && PyType_IsSubtype((PyTypeObject *)Claim, &PyTuple_Type) &&
             claim_index(claim_fields, "id", &I_ID) == 0 && claim_index(claim_fields, "field", &I_FIELD) == 0 &&
             claim_index(claim_fields, "source_id", &I_SOURCE_ID) == 0 &&
             claim_index(claim_fields, "retracted", &I_RETRACTED) == 0 && claim_index(claim_fields, "rank", &I_RANK) == 0;
    Py_DECREF(claim_fields);
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "configure(): Claim is not a named tuple");
        return NULL;
    }
    for (int i = 0; i < FIELD_VIEW_SIZE; i++)
        if (intern(&K_field_view[i], FIELD_VIEW_FIELDS[i]) < 0) return NULL;
    if (intern(&S_int, "int") < 0 || intern(&S_relation, "relation") < 0 || intern(&S_other, "other") < 0 ||
        intern(&S_publisher, "publisher") < 0 || intern(&S_reliability, "reliability") < 0 ||
        intern(&S_earliest, "earliest") < 0 || intern(&S_deprecated, "deprecated") < 0 ||
        intern(&S_normal, "normal") < 0 || intern(&S_disputed, "disputed") < 0 ||
        intern(&S_confirmed, "confirmed") < 0 || intern(&S_contested, "contested") < 0 ||
        intern(&S_fair, "fair") < 0 || intern(&S_weak, "weak") < 0 || intern(&S_AB, "AB") < 0 ||
        intern(&S_dash, "-") < 0 || intern(&S_space, " ") < 0 || intern(&S_title, "title") < 0 ||
        intern(&S_date, "date") < 0 || intern(&S_location, "location") < 0 ||
        intern(&S_perpetrator, "perpetrator") < 0 || intern(&S_responds_to, "responds_to") < 0 ||
        intern(&S_part_of, "part_of") < 0 || intern(&S_follows, "follows") < 0 || intern(&K_slug, "slug") < 0 ||
        intern(&K_id, "id") < 0 || intern(&K_grade, "grade") < 0 || intern(&K_fields, "fields") < 0 ||
        intern(&K_claims, "claims") < 0 || intern(&K_sources, "sources") < 0 || intern(&K_aliases, "aliases") < 0 ||
        intern(&K_links, "links") < 0)
        return NULL;
    if (EMPTY == NULL && (EMPTY = PyTuple_New(0)) == NULL) return NULL;
    configured = 1;
    Py_RETURN_NONE;
fail:
    Py_XDECREF(field_view);
    Py_XDECREF(alternative);
    return NULL;
}

static PyMethodDef methods[] = {
    {"view_body", (PyCFunction)(void (*)(void))view_body, METH_FASTCALL,
     "view_body(slug, claims, sources, links=(), aliases=(), policy=balanced): as chronology.bestview.view_body."},
    {"configure", configure, METH_O, "configure(names): what chronology.bestview hands it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "chronology._bestview",
    "An incident's stored view in C; chronology/bestview.py is the reference it is tested against.", -1, methods,
};

PyMODINIT_FUNC PyInit__bestview(void) {
    return PyModule_Create(&module_definition);
}
