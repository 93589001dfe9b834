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

#endif
