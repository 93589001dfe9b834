/* What chronology's C modules share: reading the names `configure()` is handed by the Python
   module each copies (see chronology/accelerated.py). */

#ifndef CHRONOLOGY_CONFIGURE_H
#define CHRONOLOGY_CONFIGURE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* `*slot = names[name]` (a new reference), or KeyError naming what is missing. */
static int take(PyObject *names, const char *name, PyObject **slot) {
    PyObject *value = PyDict_GetItemString(names, name);
    if (value == NULL) {
        PyErr_Format(PyExc_KeyError, "configure() needs %s", name);
        return -1;
    }
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

/* An interned string for `text`, made once. */
static int intern(PyObject **slot, const char *text) {
    if (*slot == NULL) *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

/* `type(*items)` for a named tuple class `type` (a subclass of tuple that adds no slots), as
   `tuple.__new__(type, items)` makes it, from `n` items whose references it takes: allocated
   at its size and filled, as CPython's own `tuple.__new__` for a subclass does, without first
   packing the items into an arguments tuple and copying them into a plain tuple. On failure
   the references are released. */
static inline PyObject *named_tuple_taking(PyObject *type, PyObject **items, Py_ssize_t n) {
    PyObject *made = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, n);
    if (made == NULL) {
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(items[i]);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(made, i, items[i]);
    return made;
}

/* `type(*items)` for a named tuple class, from a list or tuple of items (new references). */
static inline PyObject *named_tuple_of(PyObject *type, PyObject *items) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    PyObject *made = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, n);
    if (made == NULL) return NULL;
    PyObject **from = PySequence_Fast_ITEMS(items);
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(made, i, Py_NewRef(from[i]));
    return made;
}

/* `*slot` = the position of `name` among a named tuple's `fields`, or ValueError. */
static inline int claim_index(PyObject *fields, const char *name, Py_ssize_t *slot) {
    PyObject *text = PyUnicode_FromString(name);
    if (text == NULL) return -1;
    Py_ssize_t index = PySequence_Index(fields, text);
    Py_DECREF(text);
    if (index < 0) return -1;
    *slot = index;
    return 0;
}

/* Claim.counts for a claim whose `retracted` and `rank` are at these positions: not retracted
   and not `deprecated` (1), or not (0); -1 on error. */
static inline int claim_counts(PyObject *claim, Py_ssize_t retracted_at, Py_ssize_t rank_at, PyObject *deprecated) {
    int retracted = PyObject_IsTrue(PyTuple_GET_ITEM(claim, retracted_at));
    if (retracted != 0) return retracted < 0 ? -1 : 0;
    int is_deprecated = PyObject_RichCompareBool(PyTuple_GET_ITEM(claim, rank_at), deprecated, Py_EQ);
    return is_deprecated < 0 ? -1 : !is_deprecated;
}

/* `sources[source_id]` (a new reference): in a small dict, first by identity. The claims of
   an incident and the mapping of the sources they cite hold the same id objects, and a
   `uuid.UUID` hashes in Python: a lookup by hash would call it for every claim of every field.
   Anything else (a larger dict, another mapping, an equal id that is another object) is looked
   up as Python would. */
#define SOURCES_SCANNED_AT_MOST 16
static inline PyObject *source_by_id(PyObject *sources, PyObject *source_id) {
    if (PyDict_CheckExact(sources) && PyDict_GET_SIZE(sources) <= SOURCES_SCANNED_AT_MOST) {
        Py_ssize_t at = 0;
        PyObject *key, *source;
        while (PyDict_Next(sources, &at, &key, &source))
            if (key == source_id) return Py_NewRef(source);
    }
    return PyObject_GetItem(sources, source_id);
}

/* Making `uuid.UUID`s in C as `transcoder.uuid_from_int` does (the two slots set directly,
   without `UUID.__init__`), and reading the text forms a store holds as
   `transcoder.uuid_from_text` does. */
typedef struct {
    PyObject *cls, *int_slot, *safety_slot, *unknown_safety, *from_text, *empty;
} UuidMaker;

/* The maker from names["UUID"], names["unknown_safety"] and names["uuid_from_text"]. */
static inline int uuid_maker_configure(UuidMaker *maker, PyObject *names) {
    if (take(names, "UUID", &maker->cls) < 0 || take(names, "unknown_safety", &maker->unknown_safety) < 0 ||
        take(names, "uuid_from_text", &maker->from_text) < 0)
        return -1;
    if (!PyType_Check(maker->cls)) {
        PyErr_SetString(PyExc_TypeError, "configure(): UUID must be a class");
        return -1;
    }
    Py_XSETREF(maker->int_slot, PyObject_GetAttrString(maker->cls, "int"));
    Py_XSETREF(maker->safety_slot, PyObject_GetAttrString(maker->cls, "is_safe"));
    if (maker->int_slot == NULL || maker->safety_slot == NULL) return -1;
    if (Py_TYPE(maker->int_slot)->tp_descr_set == NULL || Py_TYPE(maker->safety_slot)->tp_descr_set == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure(): UUID.int and UUID.is_safe must be slots");
        return -1;
    }
    if (maker->empty == NULL && (maker->empty = PyTuple_New(0)) == NULL) return -1;
    return 0;
}

/* uuid.int, read straight from its slot for a UUID of the maker's class (the same value
   `getattr` gives, without looking the name up); any other object is asked for `name`. */
static inline PyObject *uuid_int(const UuidMaker *maker, PyObject *uuid, PyObject *name) {
    if (maker->cls != NULL && Py_IS_TYPE(uuid, (PyTypeObject *)maker->cls))
        return Py_TYPE(maker->int_slot)->tp_descr_get(maker->int_slot, uuid, maker->cls);
    return PyObject_GetAttr(uuid, name);
}

/* uuid_from_int(int.from_bytes(bytes)). */
static inline PyObject *uuid_from_bytes(const UuidMaker *maker, const unsigned char bytes[16]) {
    PyObject *number = _PyLong_FromByteArray(bytes, 16, 0, 0);
    if (number == NULL) return NULL;
    PyObject *uuid = PyBaseObject_Type.tp_new((PyTypeObject *)maker->cls, maker->empty, NULL);
    if (uuid == NULL || Py_TYPE(maker->int_slot)->tp_descr_set(maker->int_slot, uuid, number) < 0 ||
        Py_TYPE(maker->safety_slot)->tp_descr_set(maker->safety_slot, uuid, maker->unknown_safety) < 0) {
        Py_XDECREF(uuid);
        Py_DECREF(number);
        return NULL;
    }
    Py_DECREF(number);
    return uuid;
}

/* transcoder.uuid_from_text(text): text that is 32 hex digits once its hyphens are dropped (the
   forms stores keep ids in) becomes the UUID of that number here; anything else goes to the
   Python function, with its own errors. */
static inline PyObject *uuid_of_text(const UuidMaker *maker, PyObject *text) { /* text: a str */
    if (!PyUnicode_IS_ASCII(text)) return PyObject_CallOneArg(maker->from_text, text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const char *at = (const char *)PyUnicode_1BYTE_DATA(text);
    unsigned char bytes[16];
    int digits = 0;
    for (Py_ssize_t i = 0; i < length && digits <= 32; i++) {
        char c = at[i];
        if (c == '-') continue;
        int value = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (value < 0) {
            digits = -1;
            break;
        }
        if (digits < 32) {
            if (digits % 2 == 0)
                bytes[digits / 2] = (unsigned char)(value << 4);
            else
                bytes[digits / 2] |= (unsigned char)value;
        }
        digits++;
    }
    if (digits == 32) return uuid_from_bytes(maker, bytes);
    return PyObject_CallOneArg(maker->from_text, text);
}

/* memo[text] for a memo of ids: a `transcoder.UuidMemo` (`memo_type`, a dict that makes the
   UUIDs it lacks) has those it lacks made here, as its `__missing__` makes them, and kept;
   a mapping of another kind, or a text that is not a str, goes through the memo itself. */
static inline PyObject *uuid_in_memo(const UuidMaker *maker, PyObject *memo_type, PyObject *memo, PyObject *text) {
    PyObject *known = PyDict_GetItemWithError(memo, text);
    if (known != NULL) return Py_NewRef(known);
    if (PyErr_Occurred()) return NULL;
    if (!Py_IS_TYPE(memo, (PyTypeObject *)memo_type) || !PyUnicode_CheckExact(text)) return PyObject_GetItem(memo, text);
    PyObject *made = uuid_of_text(maker, text);
    if (made != NULL && PyDict_SetItem(memo, text, made) < 0) Py_CLEAR(made);
    return made;
}

/* transcoder.shared(kind, text, decode): the value decoded from the same text recently (the
   cache `recent` holds, by kind: no more than `at_most` of a kind), else decode(text), or
   uuid_of_text(uuids, text) when `decode` is NULL, kept for the next time. */
static inline PyObject *shared(PyObject *recent, Py_ssize_t at_most, PyObject *kind, PyObject *text, PyObject *decode,
                               const UuidMaker *uuids) {
    PyObject *cache = PyDict_GetItemWithError(recent, kind);
    if (cache == NULL) {
        if (PyErr_Occurred()) return NULL;
        cache = PyDict_New();
        if (cache == NULL || PyDict_SetItem(recent, kind, cache) < 0) {
            Py_XDECREF(cache);
            return NULL;
        }
        Py_DECREF(cache); /* held by `recent` */
    }
    PyObject *value = PyDict_GetItemWithError(cache, text);
    if (value != NULL && value != Py_None) return Py_NewRef(value);
    if (PyErr_Occurred()) return NULL;
    if (PyDict_GET_SIZE(cache) >= at_most) PyDict_Clear(cache);
    value = decode == NULL ? uuid_of_text(uuids, text) : PyObject_CallOneArg(decode, text);
    if (value == NULL) return NULL;
    if (PyDict_SetItem(cache, text, value) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

#endif
