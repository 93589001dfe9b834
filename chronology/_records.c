/* chronology._records: an incident's claims as the projection stores them, in C.

   The reference is Python: `encode_claims` and `decode_claims` in chronology/records.py. The
   projection writes each incident's claims with the first and reads them back with the second
   (a catch-up, every reader of the timeline, the view-building helper process); a rebuild
   encodes every claim of the log once. These do the same steps with the same Python objects:
   `encode_claims` hands orjson the same list of plain tuples, and `decode_claims` gives the same
   `Claim`s, ids and times taken from the same memo and caches (`transcoder.shared`). Stored rows
   not in the shape `encode_claims` writes are decoded by the Python function, which then raises
   its own errors. tests/test_native_records.py holds the two to each other; CHRON_PURE_PYTHON=1
   turns this module off. */

#include "_configure.h"

static PyObject *Claim, *dumps, *loads, *recent, *datetime_decoder, *python_decode_claims, *UuidMemo;
static PyObject *defaults; /* records._DEFAULTS: the values of Claim's last fields when not given */
static PyObject *K_uuid, *K_datetime;
static Py_ssize_t recent_at_most, CLAIM_SIZE, REQUIRED, I_ID, I_SOURCE_ID, I_RECORDED_AT;
static UuidMaker uuids;
static int configured = 0;

/* records._at_default: `value` is `default`, or both are str and equal. */
static int at_default(PyObject *value, PyObject *default_value) {
    if (value == default_value) return 1;
    return PyUnicode_CheckExact(value) && PyUnicode_CheckExact(default_value) &&
           PyUnicode_Compare(value, default_value) == 0;
}

/* records._stored_row: the claim's fields as a plain tuple, less the trailing ones at their
   defaults (NULL and an error if `claim` is not a Claim). */
static PyObject *stored_row(PyObject *claim) {
    if (!PyTuple_Check(claim) || PyTuple_GET_SIZE(claim) != CLAIM_SIZE) return PySequence_Tuple(claim);
    Py_ssize_t end = CLAIM_SIZE;
    while (end > REQUIRED && at_default(PyTuple_GET_ITEM(claim, end - 1), PyTuple_GET_ITEM(defaults, end - 1 - REQUIRED)))
        end--;
    return PyTuple_GetSlice(claim, 0, end);
}

static PyObject *encode_claims(PyObject *module, PyObject *claims) {
    /* encode_claims(claims): orjson.dumps([_stored_row(c) for c in claims]). */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._records is not configured");
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(claims);
    if (iterator == NULL) return NULL;
    PyObject *rows = PyList_New(0), *claim;
    while (rows != NULL && (claim = PyIter_Next(iterator)) != NULL) {
        PyObject *row = stored_row(claim);
        Py_DECREF(claim);
        if (row == NULL || PyList_Append(rows, row) < 0) Py_CLEAR(rows);
        Py_XDECREF(row);
    }
    Py_DECREF(iterator);
    if (rows == NULL || PyErr_Occurred()) {
        Py_XDECREF(rows);
        return NULL;
    }
    PyObject *encoded = PyObject_CallOneArg(dumps, rows);
    Py_DECREF(rows);
    return encoded;
}

/* The id of a stored row: memo[text] (a `UuidMemo`: a dict that makes what it lacks), or
   uuid_from_text(text) without one. */
static PyObject *claim_id(PyObject *text, PyObject *memo) {
    if (memo == Py_None) return uuid_of_text(&uuids, text);
    return uuid_in_memo(&uuids, UuidMemo, memo, text);
}

/* Whether every stored row is in the shape `encode_claims` writes: a list of Claim's required
   fields and at most its others, with text where the id, the source id and the time are. */
static int regular(PyObject *rows) {
    if (!PyList_CheckExact(rows)) return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyList_CheckExact(row) || PyList_GET_SIZE(row) < REQUIRED || PyList_GET_SIZE(row) > CLAIM_SIZE ||
            !PyUnicode_CheckExact(PyList_GET_ITEM(row, I_ID)) ||
            !PyUnicode_CheckExact(PyList_GET_ITEM(row, I_SOURCE_ID)) ||
            !PyUnicode_CheckExact(PyList_GET_ITEM(row, I_RECORDED_AT)))
            return 0;
    }
    return 1;
}

/* row[index] = value, taking the new reference. */
static void replace(PyObject *row, Py_ssize_t index, PyObject *value) {
    PyObject *old = PyList_GET_ITEM(row, index);
    PyList_SET_ITEM(row, index, value);
    Py_DECREF(old);
}

static PyObject *decode_claims(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    /* decode_claims(data, memo=None): as records.decode_claims. */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._records is not configured");
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "decode_claims(data, memo=None)");
        return NULL;
    }
    PyObject *data = args[0], *memo = nargs == 2 ? args[1] : Py_None;
    if (memo != Py_None && !PyDict_Check(memo)) return PyObject_Vectorcall(python_decode_claims, args, nargs, NULL);
    PyObject *rows = PyObject_CallOneArg(loads, data);
    if (rows == NULL) return NULL;
    if (!regular(rows)) {
        Py_DECREF(rows);
        return PyObject_Vectorcall(python_decode_claims, args, nargs, NULL);
    }
    Py_ssize_t count = PyList_GET_SIZE(rows);
    PyObject *claims = PyList_New(count);
    for (Py_ssize_t i = 0; claims != NULL && i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i), *value, *claim;
        for (Py_ssize_t at = PyList_GET_SIZE(row); at < CLAIM_SIZE; at++) /* the defaults left out */
            if (PyList_Append(row, PyTuple_GET_ITEM(defaults, at - REQUIRED)) < 0) goto failed;
        if ((value = claim_id(PyList_GET_ITEM(row, I_ID), memo)) == NULL) goto failed;
        replace(row, I_ID, value);
        value = shared(recent, recent_at_most, K_uuid, PyList_GET_ITEM(row, I_SOURCE_ID), NULL, &uuids);
        if (value == NULL) goto failed;
        replace(row, I_SOURCE_ID, value);
        value = shared(recent, recent_at_most, K_datetime, PyList_GET_ITEM(row, I_RECORDED_AT), datetime_decoder,
                       NULL);
        if (value == NULL) goto failed;
        replace(row, I_RECORDED_AT, value);
        claim = named_tuple_of(Claim, row); /* tuple.__new__(Claim, row) */
        if (claim == NULL) goto failed;
        PyList_SET_ITEM(claims, i, claim);
        continue;
    failed:
        Py_CLEAR(claims);
    }
    Py_DECREF(rows);
    return claims;
}

/* --- configuration ------------------------------------------------------------------------- */

static PyObject *configure(PyObject *module, PyObject *names) {
    /* configure(names): Claim, orjson's dumps and loads, the cache of recent values and its
       bound (`transcoder._RECENT`), the datetime decoder, UUID, unknown_safety, uuid_from_text,
       and the Python decode_claims (for rows of another shape). */
    if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    PyObject *bound = NULL;
    if (take(names, "Claim", &Claim) < 0 || take(names, "dumps", &dumps) < 0 || take(names, "loads", &loads) < 0 ||
        take(names, "recent", &recent) < 0 || take(names, "datetime_decoder", &datetime_decoder) < 0 ||
        take(names, "decode_claims", &python_decode_claims) < 0 || uuid_maker_configure(&uuids, names) < 0 ||
        take(names, "recent_at_most", &bound) < 0 || take(names, "UuidMemo", &UuidMemo) < 0 ||
        take(names, "defaults", &defaults) < 0) {
        Py_XDECREF(bound);
        return NULL;
    }
    recent_at_most = PyLong_AsSsize_t(bound);
    Py_DECREF(bound);
    if (recent_at_most < 0 && PyErr_Occurred()) return NULL;
    if (!PyDict_Check(recent) || !PyType_Check(UuidMemo)) {
        PyErr_SetString(PyExc_TypeError, "configure(): recent must be a dict and UuidMemo a class");
        return NULL;
    }
    PyObject *fields = PyObject_GetAttrString(Claim, "_fields");
    if (fields == NULL) return NULL;
    int ok = PyType_Check(Claim) && PyType_IsSubtype((PyTypeObject *)Claim, &PyTuple_Type) && PyTuple_Check(fields);
    if (ok) CLAIM_SIZE = PyTuple_GET_SIZE(fields);
    if (!ok || claim_index(fields, "id", &I_ID) < 0 || claim_index(fields, "source_id", &I_SOURCE_ID) < 0 ||
        claim_index(fields, "recorded_at", &I_RECORDED_AT) < 0) {
        Py_DECREF(fields);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "configure(): Claim must be a named tuple");
        return NULL;
    }
    Py_DECREF(fields);
    REQUIRED = PyTuple_Check(defaults) ? CLAIM_SIZE - PyTuple_GET_SIZE(defaults) : -1;
    if (REQUIRED < 0 || REQUIRED > CLAIM_SIZE || REQUIRED <= I_RECORDED_AT || REQUIRED <= I_ID ||
        REQUIRED <= I_SOURCE_ID) {
        PyErr_SetString(PyExc_TypeError, "configure(): defaults must be a tuple of Claim's last fields' defaults");
        return NULL;
    }
    if (intern(&K_uuid, "uuid_hex") < 0 || intern(&K_datetime, "datetime_iso") < 0) return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode_claims", encode_claims, METH_O, "encode_claims(claims): as chronology.records.encode_claims."},
    {"decode_claims", (PyCFunction)(void (*)(void))decode_claims, METH_FASTCALL,
     "decode_claims(data, memo=None): as chronology.records.decode_claims."},
    {"configure", configure, METH_O, "configure(names): the classes, caches and functions it uses."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "chronology._records",
    "An incident's claims as the projection stores them, in C; chronology/records.py is the reference.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__records(void) {
    return PyModule_Create(&module_definition);
}
