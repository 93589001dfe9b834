/* chronology._transcoder: the log's rows decoded into events, in C.

   The reference is Python: `decode_state` in chronology/transcoder.py and `Archive._logged`,
   `_decoded` and `decode` in chronology/archive.py. `logged_event(row, fallback)` does what
   they do for one row, in one call: the row (position, originator id, version, topic, state)
   becomes a `LoggedEvent` holding its decoded domain event, built directly for the catalog's
   current event classes; any other row (an older class version to upcast) is handed to
   `fallback(logged)`, the archive's mapper. Classes, caches and decoders come from Python
   through `configure()`. tests/test_native_decoding.py holds the two to each other;
   CHRON_PURE_PYTHON=1 turns this module off. */

#include "_configure.h"
#include <string.h>

static PyObject *LoggedEvent, *event_classes, *decoders, *recent, *loads, *untag;
static UuidMaker uuids;
static Py_ssize_t recent_at_most;
static PyObject *D_position, *D_recorded_at, *D_topic, *D_originator_id, *D_version, *D_event, *D_state;
static PyObject *S_type, *S_data, *S_class_version, *S_originator_id, *S_originator_version, *S_timestamp;
static PyObject *EMPTY;
static int configured = 0;

static Py_ssize_t count_tags(const char *data, Py_ssize_t size) {
    /* data.count(b'"_type_"') */
    static const char needle[] = "\"_type_\"";
    const Py_ssize_t length = sizeof(needle) - 1;
    Py_ssize_t found = 0;
    const char *at = data, *end = data + size;
    while (end - at >= length) {
        const char *hit = memmem(at, end - at, needle, length);
        if (hit == NULL) break;
        found++;
        at = hit + length;
    }
    return found;
}

static PyObject *decode_state(PyObject *data) {
    /* transcoder.decode_state: untag(orjson.loads(data)), the top level first. */
    PyObject *value = PyObject_CallOneArg(loads, data);
    if (value == NULL) return NULL;
    Py_ssize_t expected = count_tags(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    if (expected == 0) return value;
    if (PyDict_CheckExact(value)) {
        Py_ssize_t found = 0, at = 0;
        PyObject *key, *item;
        /* replacing a value under an existing key does not change the dict's size or order */
        while (PyDict_Next(value, &at, &key, &item)) {
            if (!PyDict_CheckExact(item) || PyDict_GET_SIZE(item) != 2) continue;
            PyObject *name = PyDict_GetItemWithError(item, S_type);
            PyObject *text = name ? PyDict_GetItemWithError(item, S_data) : NULL;
            if (text == NULL) {
                if (PyErr_Occurred()) goto error;
                continue;
            }
            PyObject *decode = PyDict_GetItemWithError(decoders, name);
            if (decode == NULL) {
                if (PyErr_Occurred()) goto error;
                continue;
            }
            Py_INCREF(name);
            Py_INCREF(text);
            PyObject *decoded = shared(recent, recent_at_most, name, text, decode, NULL);
            Py_DECREF(name);
            Py_DECREF(text);
            if (decoded == NULL) goto error;
            int ok = PyDict_SetItem(value, key, decoded);
            Py_DECREF(decoded);
            if (ok < 0) goto error;
            found++;
        }
        if (found == expected) return value;
    }
    Py_DECREF(value);
    value = PyObject_CallOneArg(loads, data);
    if (value == NULL) return NULL;
    Py_SETREF(value, PyObject_CallOneArg(untag, value));
    return value;
error:
    Py_DECREF(value);
    return NULL;
}

static int set_slot(PyObject *descriptor, PyObject *object, PyObject *value) {
    return Py_TYPE(descriptor)->tp_descr_set(descriptor, object, value);
}

static PyObject *logged_event(PyObject *row, PyObject *fallback) {
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 5) {
        PyErr_SetString(PyExc_TypeError, "a log row is (position, originator id, version, topic, state)");
        return NULL;
    }
    PyObject *position = PyTuple_GET_ITEM(row, 0), *originator = PyTuple_GET_ITEM(row, 1);
    PyObject *version = PyTuple_GET_ITEM(row, 2), *topic = PyTuple_GET_ITEM(row, 3);
    PyObject *stored = PyTuple_GET_ITEM(row, 4);
    PyObject *originator_id = NULL, *state = NULL, *logged = NULL, *event = NULL, *fields = NULL;

    originator_id = PyUnicode_CheckExact(originator) ? uuid_of_text(&uuids, originator)
                                                      : Py_NewRef(originator); /* SQLite keeps ids as text */
    if (originator_id == NULL) goto error;
    state = PyBytes_CheckExact(stored) ? Py_NewRef(stored) : PyBytes_FromObject(stored);
    if (state == NULL) goto error;
    logged = ((PyTypeObject *)LoggedEvent)->tp_alloc((PyTypeObject *)LoggedEvent, 0);
    if (logged == NULL) goto error;
    if (set_slot(D_position, logged, position) < 0 || set_slot(D_recorded_at, logged, Py_None) < 0 ||
        set_slot(D_topic, logged, topic) < 0 || set_slot(D_originator_id, logged, originator_id) < 0 ||
        set_slot(D_version, logged, version) < 0 || set_slot(D_event, logged, Py_None) < 0 ||
        set_slot(D_state, logged, state) < 0)
        goto error;

    PyObject *cls = PyDict_GetItemWithError(event_classes, topic);
    if (cls == NULL && PyErr_Occurred()) goto error;
    if (cls != NULL) {
        fields = decode_state(state);
        if (fields == NULL) goto error;
        if (!PyDict_CheckExact(fields)) {
            PyErr_SetString(PyExc_TypeError, "an event's state is not an object");
            goto error;
        }
        int upcast = PyDict_Contains(fields, S_class_version);
        if (upcast < 0) goto error;
        if (!upcast) {
            if (PyDict_SetItem(fields, S_originator_id, originator_id) < 0 ||
                PyDict_SetItem(fields, S_originator_version, version) < 0)
                goto error;
            event = PyBaseObject_Type.tp_new((PyTypeObject *)cls, EMPTY, NULL);
            if (event == NULL || PyObject_GenericSetDict(event, fields, NULL) < 0) goto error;
        }
    }
    if (event == NULL) {
        event = PyObject_CallOneArg(fallback, logged);
        if (event == NULL) goto error;
    }
    if (set_slot(D_event, logged, event) < 0) goto error;
    PyObject *timestamp = PyObject_GetAttr(event, S_timestamp);
    if (timestamp == NULL) goto error;
    int ok = set_slot(D_recorded_at, logged, timestamp);
    Py_DECREF(timestamp);
    if (ok < 0) goto error;
    Py_DECREF(originator_id);
    Py_DECREF(state);
    Py_XDECREF(fields);
    Py_DECREF(event);
    return logged;
error:
    Py_XDECREF(originator_id);
    Py_XDECREF(state);
    Py_XDECREF(logged);
    Py_XDECREF(fields);
    Py_XDECREF(event);
    return NULL;
}

static PyObject *logged_event_function(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._transcoder is not configured");
        return NULL;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "logged_event(row, fallback)");
        return NULL;
    }
    return logged_event(args[0], args[1]);
}

static PyObject *decode_state_function(PyObject *module, PyObject *data) {
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._transcoder is not configured");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "decode_state takes bytes");
        return NULL;
    }
    return decode_state(data);
}

/* --- configuration ------------------------------------------------------------------------- */

static int slot_of(const char *name, PyObject **slot) {
    PyObject *descriptor = PyObject_GetAttrString(LoggedEvent, name);
    if (descriptor == NULL) return -1;
    if (Py_TYPE(descriptor)->tp_descr_set == NULL) {
        Py_DECREF(descriptor);
        PyErr_Format(PyExc_TypeError, "LoggedEvent.%s is not a slot", name);
        return -1;
    }
    Py_XSETREF(*slot, descriptor);
    return 0;
}

static PyObject *configure(PyObject *module, PyObject *names) {
    /* configure(names): LoggedEvent, the current event classes by topic, the decoders, the
       cache of recent values and its bound, orjson.loads, untag, and UUID, unknown_safety and
       uuid_from_text for the ids. */
    if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    PyObject *bound = NULL;
    if (take(names, "LoggedEvent", &LoggedEvent) < 0 || take(names, "event_classes", &event_classes) < 0 ||
        take(names, "decoders", &decoders) < 0 || take(names, "recent", &recent) < 0 ||
        take(names, "recent_at_most", &bound) < 0 || take(names, "loads", &loads) < 0 ||
        take(names, "untag", &untag) < 0 || uuid_maker_configure(&uuids, names) < 0) {
        Py_XDECREF(bound);
        return NULL;
    }
    recent_at_most = PyLong_AsSsize_t(bound);
    Py_DECREF(bound);
    if (recent_at_most < 0 && PyErr_Occurred()) return NULL;
    if (!PyType_Check(LoggedEvent) || !PyDict_Check(event_classes) || !PyDict_Check(decoders) ||
        !PyDict_Check(recent)) {
        PyErr_SetString(PyExc_TypeError, "configure(): LoggedEvent must be a class; the others dicts");
        return NULL;
    }
    if (slot_of("position", &D_position) < 0 || slot_of("recorded_at", &D_recorded_at) < 0 ||
        slot_of("topic", &D_topic) < 0 || slot_of("originator_id", &D_originator_id) < 0 ||
        slot_of("version", &D_version) < 0 || slot_of("event", &D_event) < 0 || slot_of("state", &D_state) < 0)
        return NULL;
    if (intern(&S_type, "_type_") < 0 || intern(&S_data, "_data_") < 0 ||
        intern(&S_class_version, "class_version") < 0 || intern(&S_originator_id, "originator_id") < 0 ||
        intern(&S_originator_version, "originator_version") < 0 || intern(&S_timestamp, "timestamp") < 0)
        return NULL;
    if (EMPTY == NULL && (EMPTY = PyTuple_New(0)) == NULL) return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"logged_event", (PyCFunction)(void (*)(void))logged_event_function, METH_FASTCALL,
     "logged_event(row, fallback): one row as a LoggedEvent holding its decoded event."},
    {"decode_state", decode_state_function, METH_O, "decode_state(data): as chronology.transcoder.decode_state."},
    {"configure", configure, METH_O, "configure(names): the classes, caches and decoders it uses."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "chronology._transcoder",
    "The log's rows decoded in C; chronology/transcoder.py and archive.py are the reference.", -1, methods,
};

PyMODINIT_FUNC PyInit__transcoder(void) {
    return PyModule_Create(&module_definition);
}
