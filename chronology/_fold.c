/* chronology._fold: the log's rows folded into the projection's table state, in C.

   The reference is Python: `chronology.projection.fold` over `Archive.decoded(rows)`, with
   `chronology.state.apply_event` and `TableState.put_claim`. `fold_rows` does the same for
   rows as `Archive.log_select` gives them. Nearly every row of a log is a claim as recorded
   (a current-version `Claim.Recorded`): such a row goes straight from its stored bytes to a
   `Claim` in the state's held incidents, without a domain event, a `LoggedEvent` or a Python
   call. Every other row (a retraction, a source, an older event version to upcast, anything
   irregular) is decoded and applied by the Python functions it is handed, exactly as the
   reference does, and so raises the reference's errors. The end of each transaction is the
   caller's (`end_transaction`: refresh the views, write out). tests/test_native_fold.py holds
   the two to each other; CHRON_PURE_PYTHON=1 turns this module off. */

#include "_configure.h"

static PyObject *Claim, *claim_topic;
static PyObject *S_content, *S_class_version, *S_source_id, *S_timestamp, *S_recorded_by;
static PyObject *S_incident, *S_field, *S_value, *S_qualifier, *S_evidence, *S_said_by, *S_hedge;
static PyObject *S_generic, *S_credibility, *S_note, *S_exact, *S_normal, *S_int, *S_position, *S_held;
static PyObject *A_incidents, *A_home, *A_citations, *A_changed, *A_encoded, *A_aliases, *A_incident, *A_canonical;
static PyObject *A_links, *A_sources, *encode_claims, *python_view_inputs, *EMPTY;
static PyObject *loads, *recent, *uuid_decoder, *datetime_decoder, *K_uuid_hex, *K_datetime_iso;
static Py_ssize_t recent_at_most;
static UuidMaker uuids;
static int configured = 0;

/* What a fold holds of the table state it writes into (`TableState`'s own containers). */
typedef struct {
    PyObject *state, *incidents, *home, *citations, *changed, *encoded, *aliases;
    PyObject *decode_state; /* borrowed: the caller's */
    Py_ssize_t held; /* claims added since the state's `_held` was last brought up to date */
} Target;

static void release_target(Target *target) {
    Py_CLEAR(target->incidents);
    Py_CLEAR(target->home);
    Py_CLEAR(target->citations);
    Py_CLEAR(target->changed);
    Py_CLEAR(target->encoded);
    Py_CLEAR(target->aliases);
}

static int container(PyObject *state, PyObject *name, PyObject **slot, int want_dict) {
    PyObject *value = PyObject_GetAttr(state, name);
    if (value == NULL) return -1;
    if (want_dict ? !PyDict_CheckExact(value) : !PySet_CheckExact(value)) {
        PyErr_Format(PyExc_TypeError, "fold_rows: state.%U is not a %s", name, want_dict ? "dict" : "set");
        Py_DECREF(value);
        return -1;
    }
    *slot = value;
    return 0;
}

static int take_target(Target *target, PyObject *state, PyObject *decode_state) {
    target->state = state;
    target->decode_state = decode_state;
    target->held = 0;
    if (container(state, A_incidents, &target->incidents, 1) < 0 || container(state, A_home, &target->home, 1) < 0 ||
        container(state, A_citations, &target->citations, 0) < 0 ||
        container(state, A_changed, &target->changed, 0) < 0 || container(state, A_encoded, &target->encoded, 1) < 0 ||
        container(state, A_aliases, &target->aliases, 1) < 0) {
        release_target(target);
        return -1;
    }
    return 0;
}

/* state._held += the claims added here, and state.position = position: before any Python code
   that reads or changes them runs. */
static int bring_up_to_date(Target *target, PyObject *position) {
    if (position != NULL && PyObject_SetAttr(target->state, S_position, position) < 0) return -1;
    if (target->held == 0) return 0;
    PyObject *held = PyObject_GetAttr(target->state, S_held);
    if (held == NULL) return -1;
    PyObject *added = PyLong_FromSsize_t(target->held);
    PyObject *sum = added ? PyNumber_Add(held, added) : NULL;
    Py_DECREF(held);
    Py_XDECREF(added);
    if (sum == NULL) return -1;
    int ok = PyObject_SetAttr(target->state, S_held, sum);
    Py_DECREF(sum);
    if (ok < 0) return -1;
    target->held = 0;
    return 0;
}

/* Claim.from_content for a recorded claim's content and its state's other fields, or NULL
   without an error when the content lacks what every claim has. */
static PyObject *claim_from(PyObject *content, PyObject *source_id, PyObject *timestamp, PyObject *recorded_by,
                            PyObject *originator_id, PyObject *position) {
    PyObject *incident = PyDict_GetItemWithError(content, S_incident);
    PyObject *field = incident ? PyDict_GetItemWithError(content, S_field) : NULL;
    PyObject *value = field ? PyDict_GetItemWithError(content, S_value) : NULL;
    PyObject *evidence = value ? PyDict_GetItemWithError(content, S_evidence) : NULL;
    if (evidence == NULL) return NULL;
    PyObject *qualifier = PyDict_GetItemWithError(content, S_qualifier);
    PyObject *said_by = qualifier || !PyErr_Occurred() ? PyDict_GetItemWithError(content, S_said_by) : NULL;
    PyObject *hedge = said_by || !PyErr_Occurred() ? PyDict_GetItemWithError(content, S_hedge) : NULL;
    PyObject *generic = hedge || !PyErr_Occurred() ? PyDict_GetItemWithError(content, S_generic) : NULL;
    PyObject *credibility = generic || !PyErr_Occurred() ? PyDict_GetItemWithError(content, S_credibility) : NULL;
    PyObject *note = credibility || !PyErr_Occurred() ? PyDict_GetItemWithError(content, S_note) : NULL;
    if (PyErr_Occurred()) return NULL;
    PyObject *items[19] = {
        originator_id, incident, field, value, qualifier ? qualifier : S_exact, source_id, evidence, timestamp,
        recorded_by, position, said_by ? said_by : Py_None, hedge ? hedge : Py_None, generic ? generic : Py_False,
        credibility ? credibility : Py_None, note ? note : Py_None, Py_False, Py_None, S_normal, Py_None,
    };
    for (int i = 0; i < 19; i++) Py_INCREF(items[i]);
    return named_tuple_taking(Claim, items, 19); /* Claim(*items), as tuple.__new__(Claim, items) */
}

/* Claim.from_content for a recorded claim's decoded state, or NULL without an error when the
   state is not the plain shape (the reference then decodes and applies it). */
static PyObject *claim_of(PyObject *fields, PyObject *originator_id, PyObject *position) {
    PyObject *content = PyDict_GetItemWithError(fields, S_content);
    if (content == NULL || !PyDict_CheckExact(content)) return NULL;
    PyObject *source_id = PyDict_GetItemWithError(fields, S_source_id);
    PyObject *timestamp = source_id ? PyDict_GetItemWithError(fields, S_timestamp) : NULL;
    PyObject *recorded_by = timestamp ? PyDict_GetItemWithError(fields, S_recorded_by) : NULL;
    if (recorded_by == NULL) return NULL;
    return claim_from(content, source_id, timestamp, recorded_by, originator_id, position);
}

/* --- a recorded claim's state as the archive writes it ------------------------------------- */

/* The archive writes a recorded claim's state with orjson, keys sorted, its source id and time
   tagged (`transcoder.tag`): `{"content":{...},"originator_topic":"chronology.domain:Claim",
   "recorded_by":"...","source_id":{"_data_":"<hex>","_type_":"uuid_hex"},"timestamp":{"_data_":
   "<ISO time>","_type_":"datetime_iso"}}`. `claim_of_written` reads a state of exactly that form
   without decoding all of it: the rest is matched byte for byte from the end back, and orjson
   decodes what is left between the braces, the content (the only part holding more than text).
   Any other form (another key, spaces, an escape or a byte beyond printable ASCII in the texts, a
   tag inside the content, content orjson rejects, a time that does not parse) is left to
   `decode_state` and `claim_of`, which read every form the reference reads and raise what it
   raises. */
static const char WRITTEN_START[] = "{\"content\":";
static const char WRITTEN_TOPIC[] = ",\"originator_topic\":\"chronology.domain:Claim\",\"recorded_by\":\"";
static const char WRITTEN_SOURCE[] = "\",\"source_id\":{\"_data_\":\"";
static const char WRITTEN_TIME[] = "\",\"_type_\":\"uuid_hex\"},\"timestamp\":{\"_data_\":\"";
static const char WRITTEN_END[] = "\",\"_type_\":\"datetime_iso\"}}";
#define LITERAL(text) (text), (sizeof(text) - 1)

/* Whether `text` (of `length` bytes) ends at `*end` in the state starting at `start`; steps
   back over it. */
static int written_before(const char **end, const char *start, const char *text, size_t length) {
    if ((size_t)(*end - start) < length || memcmp(*end - length, text, length) != 0) return 0;
    *end -= length;
    return 1;
}

/* The length of the text ending at `end` back to the quote before it, when every byte of it is
   printable ASCII other than a quote or a backslash (orjson writes such text as it is); else -1. */
static Py_ssize_t plain_text_before(const char *end, const char *start) {
    for (const char *c = end - 1; c >= start; c--) {
        if (*c == '"') return end - 1 - c;
        if (*c < 0x20 || *c > 0x7e || *c == '\\') return -1;
    }
    return -1;
}

/* transcoder.shared(kind, text, decode) of the `length` bytes at `at`. */
static PyObject *shared_of(PyObject *kind, const char *at, Py_ssize_t length, PyObject *decode) {
    PyObject *text = PyUnicode_FromStringAndSize(at, length);
    if (text == NULL) return NULL;
    PyObject *value = shared(recent, recent_at_most, kind, text, decode, NULL);
    Py_DECREF(text);
    return value;
}

/* The `Claim` of a state in the form the archive writes, or NULL without an error for a state
   in any other form (and for one whose parts do not decode: the reference says why). */
static PyObject *claim_of_written(PyObject *data, PyObject *originator_id, PyObject *position) {
    static PyObject *last_recorded_by = NULL; /* the same few names, row after row */
    static PyObject *last_time_text = NULL, *last_time = NULL; /* a transaction's claims share it */
    /* Read from the end back, over the parts of fixed form, to where the content ends: orjson
       then says whether what is left is one JSON object. */
    const char *start = PyBytes_AS_STRING(data), *at = start + PyBytes_GET_SIZE(data);
    if (!written_before(&at, start, LITERAL(WRITTEN_END))) return NULL;
    Py_ssize_t time_length = plain_text_before(at, start);
    if (time_length < 0) return NULL;
    const char *time_at = at -= time_length;
    if (!written_before(&at, start, LITERAL(WRITTEN_TIME))) return NULL;
    Py_ssize_t source_length = plain_text_before(at, start);
    if (source_length < 0) return NULL;
    const char *source_at = at -= source_length;
    if (!written_before(&at, start, LITERAL(WRITTEN_SOURCE))) return NULL;
    Py_ssize_t recorded_by_length = plain_text_before(at, start);
    if (recorded_by_length < 0) return NULL;
    const char *recorded_by_at = at -= recorded_by_length;
    if (!written_before(&at, start, LITERAL(WRITTEN_TOPIC))) return NULL;
    const char *content_at = start + sizeof(WRITTEN_START) - 1;
    if (at - content_at < 2 || memcmp(start, LITERAL(WRITTEN_START)) != 0 || *content_at != '{' || at[-1] != '}')
        return NULL;
    Py_ssize_t content_length = at - content_at;
    if (memmem(content_at, content_length, LITERAL("\"_type_\"")) != NULL) return NULL; /* tagged: untag it */

    PyObject *view = PyMemoryView_FromMemory((char *)content_at, content_length, PyBUF_READ);
    PyObject *content = view ? PyObject_CallOneArg(loads, view) : NULL;
    Py_XDECREF(view);
    PyObject *source_id = content ? shared_of(K_uuid_hex, source_at, source_length, uuid_decoder) : NULL;
    PyObject *timestamp = NULL;
    if (source_id != NULL) {
        if (last_time != NULL && PyUnicode_GET_LENGTH(last_time_text) == time_length &&
            memcmp(PyUnicode_1BYTE_DATA(last_time_text), time_at, time_length) == 0) {
            timestamp = Py_NewRef(last_time);
        } else if ((timestamp = shared_of(K_datetime_iso, time_at, time_length, datetime_decoder)) != NULL) {
            Py_XSETREF(last_time_text, PyUnicode_FromStringAndSize(time_at, time_length));
            Py_XSETREF(last_time, last_time_text ? Py_NewRef(timestamp) : NULL);
        }
    }
    PyObject *claim = NULL;
    if (timestamp != NULL && PyDict_CheckExact(content)) {
        if (last_recorded_by == NULL || PyUnicode_GET_LENGTH(last_recorded_by) != recorded_by_length ||
            memcmp(PyUnicode_1BYTE_DATA(last_recorded_by), recorded_by_at, recorded_by_length) != 0)
            Py_XSETREF(last_recorded_by, PyUnicode_FromStringAndSize(recorded_by_at, recorded_by_length));
        if (last_recorded_by != NULL)
            claim = claim_from(content, source_id, timestamp, last_recorded_by, originator_id, position);
    }
    Py_XDECREF(content);
    Py_XDECREF(source_id);
    Py_XDECREF(timestamp);
    if (claim == NULL) PyErr_Clear(); /* the reference decodes it again, and says what is wrong */
    return claim;
}

/* TableState.put_claim(claim), then the incident's canonical slug added to `dirty`. */
static int put_claim(Target *target, PyObject *claim, PyObject *dirty) {
    PyObject *slug = PyTuple_GET_ITEM(claim, 1);
    PyObject *claims = PyDict_GetItemWithError(target->incidents, slug);
    if (claims != NULL) {
        Py_INCREF(claims);
    } else {
        if (PyErr_Occurred() || bring_up_to_date(target, NULL) < 0) return -1;
        claims = PyObject_CallMethodOneArg(target->state, A_incident, slug); /* read, and held from now on */
        if (claims == NULL) return -1;
        if (!PyDict_CheckExact(claims)) {
            Py_DECREF(claims);
            PyErr_SetString(PyExc_TypeError, "fold_rows: state._incident() did not give a dict");
            return -1;
        }
    }
    int result = -1;
    PyObject *key = uuid_int(&uuids, PyTuple_GET_ITEM(claim, 0), S_int);
    PyObject *source = NULL, *citation = NULL, *canonical = NULL;
    if (key == NULL) goto done;
    int known = PyDict_Contains(claims, key);
    if (known < 0) goto done;
    if (!known) {
        source = uuid_int(&uuids, PyTuple_GET_ITEM(claim, 5), S_int);
        citation = source ? PyTuple_Pack(2, source, slug) : NULL;
        if (citation == NULL || PyDict_SetItem(target->home, key, slug) < 0 ||
            PySet_Add(target->citations, citation) < 0)
            goto done;
        target->held++;
    }
    if (PyDict_SetItem(claims, key, claim) < 0 || PySet_Add(target->changed, slug) < 0) goto done;
    if (PyDict_GET_SIZE(target->encoded) > 0) { /* encoded.pop(slug, None) */
        int encoded = PyDict_Contains(target->encoded, slug);
        if (encoded < 0 || (encoded && PyDict_DelItem(target->encoded, slug) < 0)) goto done;
    }
    if (PyDict_GET_SIZE(target->aliases) == 0) {
        canonical = Py_NewRef(slug);
    } else {
        canonical = PyObject_CallMethodOneArg(target->state, A_canonical, slug);
        if (canonical == NULL) goto done;
    }
    result = PySet_Add(dirty, canonical);
done:
    Py_DECREF(claims);
    Py_XDECREF(key);
    Py_XDECREF(source);
    Py_XDECREF(citation);
    Py_XDECREF(canonical);
    return result;
}

/* The fold's running transaction: its time, the incidents it touched, the last position. */
typedef struct {
    PyObject *at, *dirty, *last_position, *last_changed;
} Running;

/* `fold`'s step before applying an event recorded at `at`: a new transaction time ends the
   running transaction (end_transaction(dirty, at, False)). */
static int enter(Running *run, Target *target, PyObject *at, PyObject *end_transaction) {
    if (run->at != NULL && run->at != at) {
        int differs = PyObject_RichCompareBool(at, run->at, Py_NE);
        if (differs < 0) return -1;
        if (differs) {
            if (bring_up_to_date(target, run->last_position) < 0) return -1;
            PyObject *done = PyObject_CallFunctionObjArgs(end_transaction, run->dirty, run->at, Py_False, NULL);
            if (done == NULL) return -1;
            Py_DECREF(done);
            Py_SETREF(run->dirty, PySet_New(NULL));
            if (run->dirty == NULL) return -1;
        }
    }
    Py_XSETREF(run->at, Py_NewRef(at));
    if (run->last_changed == NULL || run->last_changed == Py_None) {
        Py_XSETREF(run->last_changed, Py_NewRef(at));
    } else {
        int later = PyObject_RichCompareBool(at, run->last_changed, Py_GT);
        if (later < 0) return -1;
        if (later) Py_SETREF(run->last_changed, Py_NewRef(at));
    }
    return 0;
}

/* One row the Python functions decode and apply, as the reference does every row. */
static int apply_in_python(Running *run, Target *target, PyObject *row, PyObject *position, PyObject *decode_row,
                           PyObject *apply_event, PyObject *end_transaction) {
    PyObject *logged = PyObject_CallOneArg(decode_row, row);
    if (logged == NULL) return -1;
    int result = -1;
    PyObject *at = PyObject_GetAttrString(logged, "recorded_at");
    PyObject *event = at ? PyObject_GetAttrString(logged, "event") : NULL;
    PyObject *touched = NULL, *iterator = NULL, *slug;
    if (event == NULL || enter(run, target, at, end_transaction) < 0) goto done;
    if (bring_up_to_date(target, run->last_position) < 0) goto done; /* as `fold` leaves them */
    touched = PyObject_CallFunctionObjArgs(apply_event, target->state, position, event, NULL);
    if (touched == NULL || (iterator = PyObject_GetIter(touched)) == NULL) goto done;
    while ((slug = PyIter_Next(iterator)) != NULL) {
        int ok = PySet_Add(run->dirty, slug);
        Py_DECREF(slug);
        if (ok < 0) goto done;
    }
    if (PyErr_Occurred()) goto done;
    result = 0;
done:
    Py_DECREF(logged);
    Py_XDECREF(at);
    Py_XDECREF(event);
    Py_XDECREF(touched);
    Py_XDECREF(iterator);
    return result;
}

/* A recorded claim's row folded here: 1; not the plain shape, for Python: 0; error: -1. */
static int fold_claim_row(Running *run, Target *target, PyObject *row, PyObject *position,
                          PyObject *end_transaction) {
    PyObject *originator = PyTuple_GET_ITEM(row, 1), *stored = PyTuple_GET_ITEM(row, 4);
    PyObject *data = PyBytes_CheckExact(stored) ? Py_NewRef(stored) : PyBytes_FromObject(stored);
    if (data == NULL) return -1;
    PyObject *originator_id = PyUnicode_CheckExact(originator) ? uuid_of_text(&uuids, originator)
                                                               : Py_NewRef(originator); /* SQLite keeps ids as text */
    PyObject *fields = NULL, *claim = NULL;
    int result = -1;
    if (originator_id == NULL) goto done;
    claim = claim_of_written(data, originator_id, position);
    if (claim == NULL) { /* any other form: decoded whole, as the reference decodes it */
        if ((fields = PyObject_CallOneArg(target->decode_state, data)) == NULL) goto done;
        result = 0;
        if (!PyDict_CheckExact(fields)) goto done;
        int upcast = PyDict_Contains(fields, S_class_version);
        if (upcast != 0) {
            result = upcast < 0 ? -1 : 0;
            goto done;
        }
        claim = claim_of(fields, originator_id, position);
        if (claim == NULL) {
            result = PyErr_Occurred() ? -1 : 0;
            goto done;
        }
    }
    result = -1;
    if (enter(run, target, PyTuple_GET_ITEM(claim, 7), end_transaction) < 0 ||
        put_claim(target, claim, run->dirty) < 0)
        goto done;
    result = 1;
done:
    Py_DECREF(data);
    Py_XDECREF(originator_id);
    Py_XDECREF(fields);
    Py_XDECREF(claim);
    return result;
}

static PyObject *fold_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    /* fold_rows(rows, state, decode_state, decode_row, apply_event, end_transaction) ->
       (last position, last transaction time): `fold` of the rows into `state`; claims' states
       decoded by decode_state(bytes), other rows by decode_row(row) and applied by
       apply_event(state, position, event); end_transaction(dirty, at, final) ends each
       transaction (final: the last one, after the rows ran out). */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._fold is not configured");
        return NULL;
    }
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "fold_rows(rows, state, decode_state, decode_row, apply_event, end_transaction)");
        return NULL;
    }
    PyObject *decode_row = args[3], *apply_event = args[4], *end_transaction = args[5];
    Target target = {0};
    Running run = {NULL, NULL, NULL, NULL};
    PyObject *iterator = NULL, *row = NULL, *result = NULL;
    if (take_target(&target, args[1], args[2]) < 0) return NULL;
    run.dirty = PySet_New(NULL);
    run.last_position = PyLong_FromLong(0);
    if (run.dirty == NULL || run.last_position == NULL || (iterator = PyObject_GetIter(args[0])) == NULL) goto done;
    while ((row = PyIter_Next(iterator)) != NULL) {
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 5) {
            PyErr_SetString(PyExc_TypeError, "a log row is (position, originator id, version, topic, state)");
            goto done;
        }
        PyObject *position = PyTuple_GET_ITEM(row, 0), *topic = PyTuple_GET_ITEM(row, 3);
        int folded = 0;
        if (PyUnicode_Check(topic)) {
            int is_claim = PyUnicode_Compare(topic, claim_topic) == 0;
            if (is_claim && (folded = fold_claim_row(&run, &target, row, position, end_transaction)) < 0) goto done;
        }
        if (!folded &&
            apply_in_python(&run, &target, row, position, decode_row, apply_event, end_transaction) < 0)
            goto done;
        Py_SETREF(run.last_position, Py_NewRef(position));
        Py_CLEAR(row);
    }
    if (PyErr_Occurred()) goto done;
    if (bring_up_to_date(&target, run.at != NULL ? run.last_position : NULL) < 0) goto done;
    if (run.at != NULL) {
        PyObject *ended = PyObject_CallFunctionObjArgs(end_transaction, run.dirty, run.at, Py_True, NULL);
        if (ended == NULL) goto done;
        Py_DECREF(ended);
    }
    result = PyTuple_Pack(2, run.last_position, run.last_changed ? run.last_changed : Py_None);
done:
    Py_XDECREF(row);
    Py_XDECREF(iterator);
    Py_XDECREF(run.at);
    Py_XDECREF(run.dirty);
    Py_XDECREF(run.last_position);
    Py_XDECREF(run.last_changed);
    release_target(&target);
    return result;
}

/* --- what a view is built from -------------------------------------------------------------- */

/* The attribute `name` of `state` if it is exactly of `type` (a new reference), else NULL (an
   error only if reading it failed). */
static PyObject *exactly(PyObject *state, PyObject *name, PyTypeObject *type) {
    PyObject *value = PyObject_GetAttr(state, name);
    if (value != NULL && Py_TYPE(value) != type) Py_CLEAR(value);
    return value;
}

/* `view_inputs` for an incident whose claims are held, in a state with no merges or links and
   every cited source held (a rebuild's, nearly always): NULL without an error otherwise. */
static PyObject *held_view_inputs(PyObject *state, PyObject *slug, int with_encoded) {
    PyObject *aliases = NULL, *links = NULL, *incidents = NULL, *sources = NULL, *encoded_by_slug = NULL;
    PyObject *claims = NULL, *cited = NULL, *encoded = NULL, *result = NULL;
    if ((aliases = exactly(state, A_aliases, &PyDict_Type)) == NULL || PyDict_GET_SIZE(aliases) > 0 ||
        (links = exactly(state, A_links, &PyList_Type)) == NULL || PyList_GET_SIZE(links) > 0 ||
        (incidents = exactly(state, A_incidents, &PyDict_Type)) == NULL ||
        (sources = exactly(state, A_sources, &PyDict_Type)) == NULL ||
        (encoded_by_slug = exactly(state, A_encoded, &PyDict_Type)) == NULL)
        goto done;
    PyObject *held = PyDict_GetItemWithError(incidents, slug);
    if (held == NULL || !PyDict_CheckExact(held) || PyDict_GET_SIZE(held) == 0) goto done;
    if ((claims = PyDict_Values(held)) == NULL || (cited = PyDict_New()) == NULL) goto done;
    PyObject *seen[16]; /* source ids already looked up, by identity: an incident cites few */
    int n_seen = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(claims); i++) {
        PyObject *claim = PyList_GET_ITEM(claims, i);
        if (!PyTuple_Check(claim) || PyTuple_GET_SIZE(claim) != 19) goto done;
        PyObject *source_id = PyTuple_GET_ITEM(claim, 5);
        int known = 0;
        for (int k = 0; k < n_seen && !known; k++) known = seen[k] == source_id;
        if (known) continue;
        if (n_seen < 16) seen[n_seen++] = source_id;
        PyObject *source = PyDict_GetItemWithError(sources, source_id);
        if (source == NULL || PyDict_SetItem(cited, source_id, source) < 0) goto done;
    }
    if (with_encoded) {
        PyObject *stored = PyDict_GetItemWithError(encoded_by_slug, slug);
        if (stored != NULL) {
            encoded = PyTuple_Pack(1, stored);
        } else if (!PyErr_Occurred()) { /* TableState.encoded_claims: made once while they stay the same */
            PyObject *values = PyObject_CallMethod(held, "values", NULL);
            PyObject *made = values ? PyObject_CallOneArg(encode_claims, values) : NULL;
            Py_XDECREF(values);
            if (made != NULL && PyDict_SetItem(encoded_by_slug, slug, made) == 0) encoded = PyTuple_Pack(1, made);
            Py_XDECREF(made);
        }
        if (encoded == NULL) goto done;
    }
    result = PyTuple_Pack(5, claims, EMPTY, EMPTY, cited, encoded ? encoded : Py_None);
done:
    Py_XDECREF(aliases);
    Py_XDECREF(links);
    Py_XDECREF(incidents);
    Py_XDECREF(sources);
    Py_XDECREF(encoded_by_slug);
    Py_XDECREF(claims);
    Py_XDECREF(cited);
    Py_XDECREF(encoded);
    return result;
}

static PyObject *view_inputs(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    /* view_inputs(state, slug, with_encoded): as projection.view_inputs. */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._fold is not configured");
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "view_inputs(state, slug, with_encoded)");
        return NULL;
    }
    int with_encoded = PyObject_IsTrue(args[2]);
    if (with_encoded < 0) return NULL;
    PyObject *inputs = PyUnicode_CheckExact(args[1]) ? held_view_inputs(args[0], args[1], with_encoded) : NULL;
    if (inputs != NULL || PyErr_Occurred()) return inputs;
    return PyObject_Vectorcall(python_view_inputs, args, nargs, NULL); /* the reference, for the rest */
}

/* --- configuration ------------------------------------------------------------------------- */

static const char *CLAIM_FIELDS[19] = {
    "id", "incident", "field", "value", "qualifier", "source_id", "evidence", "recorded_at", "recorded_by",
    "position", "said_by", "hedge", "generic", "credibility", "note", "retracted", "retraction_reason", "rank",
    "rank_reason",
};

static PyObject *configure(PyObject *module, PyObject *names) {
    /* configure(names): the Claim class, uuid_from_text, the UUID class and the safety
       `uuid_from_int` gives a UUID, the topic of a recorded claim, and for `view_inputs` the
       claims' encoder and the Python `view_inputs` (for every incident it does not take). */
    if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    if (take(names, "Claim", &Claim) < 0 || take(names, "claim_topic", &claim_topic) < 0 ||
        take(names, "encode_claims", &encode_claims) < 0 || take(names, "view_inputs", &python_view_inputs) < 0 ||
        uuid_maker_configure(&uuids, names) < 0 || take(names, "loads", &loads) < 0 ||
        take(names, "recent", &recent) < 0)
        return NULL;
    PyObject *decoders = PyDict_GetItemString(names, "decoders"), *at_most = PyDict_GetItemString(names, "recent_at_most");
    if (decoders == NULL || !PyDict_Check(decoders) || at_most == NULL || !PyDict_Check(recent)) {
        PyErr_SetString(PyExc_TypeError, "configure(): decoders, recent and recent_at_most are wanted");
        return NULL;
    }
    if ((recent_at_most = PyLong_AsSsize_t(at_most)) < 0) return NULL;
    Py_XSETREF(uuid_decoder, Py_XNewRef(PyDict_GetItemString(decoders, "uuid_hex")));
    Py_XSETREF(datetime_decoder, Py_XNewRef(PyDict_GetItemString(decoders, "datetime_iso")));
    if (uuid_decoder == NULL || datetime_decoder == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure(): decoders must hold uuid_hex and datetime_iso");
        return NULL;
    }
    if (intern(&K_uuid_hex, "uuid_hex") < 0 || intern(&K_datetime_iso, "datetime_iso") < 0) return NULL;
    if (EMPTY == NULL && (EMPTY = PyTuple_New(0)) == NULL) return NULL;
    PyObject *fields = PyObject_GetAttrString(Claim, "_fields");
    if (fields == NULL) return NULL;
    int same = PyType_Check(Claim) && PyType_IsSubtype((PyTypeObject *)Claim, &PyTuple_Type) &&
               PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) == 19;
    for (Py_ssize_t i = 0; same && i < 19; i++)
        same = PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(fields, i), CLAIM_FIELDS[i]) == 0;
    Py_DECREF(fields);
    if (!same) {
        PyErr_SetString(PyExc_TypeError, "configure(): Claim is not the named tuple this module builds");
        return NULL;
    }
    if (!PyUnicode_Check(claim_topic)) {
        PyErr_SetString(PyExc_TypeError, "configure(): claim_topic must be a str");
        return NULL;
    }
    if (intern(&S_content, "content") < 0 || intern(&S_class_version, "class_version") < 0 ||
        intern(&S_source_id, "source_id") < 0 || intern(&S_timestamp, "timestamp") < 0 ||
        intern(&S_recorded_by, "recorded_by") < 0 || intern(&S_incident, "incident") < 0 ||
        intern(&S_field, "field") < 0 || intern(&S_value, "value") < 0 || intern(&S_qualifier, "qualifier") < 0 ||
        intern(&S_evidence, "evidence") < 0 || intern(&S_said_by, "said_by") < 0 || intern(&S_hedge, "hedge") < 0 ||
        intern(&S_generic, "generic") < 0 || intern(&S_credibility, "credibility") < 0 ||
        intern(&S_note, "note") < 0 || intern(&S_exact, "exact") < 0 || intern(&S_normal, "normal") < 0 ||
        intern(&S_int, "int") < 0 || intern(&S_position, "position") < 0 || intern(&S_held, "_held") < 0 ||
        intern(&A_incidents, "_incidents") < 0 || intern(&A_home, "_home") < 0 ||
        intern(&A_citations, "_citations") < 0 || intern(&A_changed, "_changed") < 0 ||
        intern(&A_encoded, "_encoded") < 0 || intern(&A_aliases, "aliases") < 0 ||
        intern(&A_incident, "_incident") < 0 || intern(&A_canonical, "canonical") < 0 ||
        intern(&A_links, "links") < 0 || intern(&A_sources, "_sources") < 0)
        return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fold_rows", (PyCFunction)(void (*)(void))fold_rows, METH_FASTCALL,
     "fold_rows(rows, state, decode_state, decode_row, apply_event, end_transaction): as projection.fold."},
    {"view_inputs", (PyCFunction)(void (*)(void))view_inputs, METH_FASTCALL,
     "view_inputs(state, slug, with_encoded): as projection.view_inputs."},
    {"configure", configure, METH_O,
     "configure(names): Claim, uuid_from_text, UUID, unknown_safety, claim_topic, encode_claims, view_inputs, loads,"
     " decoders, recent, recent_at_most."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "chronology._fold",
    "The log's rows folded into the projection's table state in C; chronology/projection.py is the reference.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__fold(void) {
    return PyModule_Create(&module_definition);
}
