/* Compiled core of gridbind.sttp.tssc: the TSSC encoder and decoder loops.
 *
 * Byte-identical to the pure-Python core in tssc.py (which documents the algorithm); the public
 * API, framing and sequence numbers live in Python. Arithmetic on timestamps wraps modulo 2**64
 * exactly as the deployed implementations do. Point state is kept in a pool indexed through an
 * open-addressing hash of the 32-bit point id, so hostile ids never cause large allocations: the
 * pool grows by one point per decoded measurement at most, and a block of n bytes yields at most
 * 8n measurements. decode() bounds both: at most `limit` measurements per block (the count its
 * packet declares) and at most `max_points` distinct point ids in the state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define HEADROOM 100 /* a block is full when fewer payload bytes remain (deployed rule) */
#define SLACK 64     /* one measurement writes at most ~30 bytes past the headroom check */

typedef struct {
    uint32_t next_id, flags1, flags2, v1, v2, v3;
    int32_t sent;
    uint8_t stats[32];
    uint8_t startup, mode, m1, m2, m3;
} Point;

typedef struct {
    int id_codes, id_bits;
    uint32_t id_mask;
    int td, ts2c, txor, f2, f7, v1c, vzero, vxor4, vxor32;
    Point *pts;
    Py_ssize_t npts, cappts;
    uint32_t *hkeys;
    int32_t *hvals;
    uint32_t hmask;
    Py_ssize_t hcount;
    Py_ssize_t last;
    int64_t ts1, ts2;
    int64_t d[4];
    Py_ssize_t max_points; /* decoder: distinct point ids it may hold (-1: unbounded) */
} Codec;

static const int ID_WIDTHS[7] = {4, 8, 12, 16, 20, 24, 32};

static void point_init(Point *p, int v1c) {
    memset(p, 0, sizeof *p);
    p->mode = 4;
    p->m1 = (uint8_t)v1c;
    p->m2 = (uint8_t)(v1c + 1);
    p->m3 = (uint8_t)(v1c + 2);
}

static void point_adapt(Point *p) {
    int c1 = 0, n1 = 0, c2 = 1, n2 = 0, c3 = 2, n3 = 0, total = 0;
    for (int code = 0; code < 32; code++) {
        int n = p->stats[code];
        total += n;
        if (n > n3) {
            if (n > n1) {
                c3 = c2; n3 = n2; c2 = c1; n2 = n1; c1 = code; n1 = n;
            } else if (n > n2) {
                c3 = c2; n3 = n2; c2 = code; n2 = n;
            } else {
                c3 = code; n3 = n;
            }
        }
    }
    memset(p->stats, 0, sizeof p->stats);
    int s1 = total * 5;
    int s2 = n1 + (total - n1) * 6;
    int s3 = n1 + n2 * 2 + (total - n1 - n2) * 7;
    int s4 = n1 + n2 * 2 + n3 * 3 + (total - n1 - n2 - n3) * 8;
    int smallest = s1;
    if (s2 < smallest) smallest = s2;
    if (s3 < smallest) smallest = s3;
    if (s4 < smallest) smallest = s4;
    if (smallest == s1) {
        p->mode = 1;
    } else if (smallest == s2) {
        p->mode = 2; p->m1 = (uint8_t)c1;
    } else if (smallest == s3) {
        p->mode = 3; p->m1 = (uint8_t)c1; p->m2 = (uint8_t)c2;
    } else {
        p->mode = 4; p->m1 = (uint8_t)c1; p->m2 = (uint8_t)c2; p->m3 = (uint8_t)c3;
    }
    p->sent = 0;
}

static inline void point_count(Point *p, int code) {
    p->sent++;
    p->stats[code]++;
    if (p->startup == 0) {
        if (p->sent > 5) { p->startup = 1; point_adapt(p); }
    } else if (p->startup == 1) {
        if (p->sent > 20) { p->startup = 2; point_adapt(p); }
    } else if (p->sent > 100) {
        point_adapt(p);
    }
}

static int codec_hash_alloc(Codec *c, uint32_t size) {
    uint32_t *keys = PyMem_Malloc(sizeof(uint32_t) * size);
    int32_t *vals = PyMem_Malloc(sizeof(int32_t) * size);
    if (!keys || !vals) {
        PyMem_Free(keys);
        PyMem_Free(vals);
        PyErr_NoMemory();
        return -1;
    }
    memset(vals, 0xFF, sizeof(int32_t) * size);
    PyMem_Free(c->hkeys);
    PyMem_Free(c->hvals);
    c->hkeys = keys;
    c->hvals = vals;
    c->hmask = size - 1;
    c->hcount = 0;
    return 0;
}

static int codec_reset(Codec *c) {
    if (codec_hash_alloc(c, 1024) < 0) return -1;
    if (c->cappts > 1024 || c->pts == NULL) {
        Point *pts = PyMem_Realloc(c->pts, sizeof(Point) * 256);
        if (!pts) { PyErr_NoMemory(); return -1; }
        c->pts = pts;
        c->cappts = 256;
    }
    c->npts = 1; /* slot 0: the "previous point" before the first measurement, never hashed */
    point_init(&c->pts[0], c->v1c);
    c->last = 0;
    c->ts1 = c->ts2 = 0;
    for (int i = 0; i < 4; i++) c->d[i] = INT64_MAX;
    return 0;
}

static int codec_init(Codec *c, int id_codes, int id_bits) {
    memset(c, 0, sizeof *c);
    if (!((id_codes == 4 && id_bits == 16) || (id_codes == 7 && id_bits == 32))) {
        PyErr_SetString(PyExc_ValueError, "unsupported TSSC code table (4/16 or 7/32 expected)");
        return -1;
    }
    c->id_codes = id_codes;
    c->id_bits = id_bits;
    c->max_points = -1;
    c->id_mask = id_bits == 32 ? 0xFFFFFFFFu : (uint32_t)((1u << id_bits) - 1);
    int base = id_codes + 1;
    c->td = base;
    c->ts2c = base + 8;
    c->txor = base + 9;
    c->f2 = base + 10;
    c->f7 = base + 11;
    c->v1c = base + 12;
    c->vzero = base + 15;
    c->vxor4 = base + 16;
    c->vxor32 = base + 23;
    return codec_reset(c);
}

static void codec_free(Codec *c) {
    PyMem_Free(c->pts);
    PyMem_Free(c->hkeys);
    PyMem_Free(c->hvals);
    c->pts = NULL;
    c->hkeys = NULL;
    c->hvals = NULL;
}

static inline uint32_t hash_id(uint32_t id) { return id * 2654435761u; }

/* Index of the point with this id, created on first sight; -1 on memory error, -2 when a new
 * point would pass max_points. */
static Py_ssize_t codec_point(Codec *c, uint32_t id) {
    uint32_t h = hash_id(id) & c->hmask;
    for (;;) {
        int32_t v = c->hvals[h];
        if (v < 0) break;
        if (c->hkeys[h] == id) return v;
        h = (h + 1) & c->hmask;
    }
    if (c->max_points >= 0 && c->hcount >= c->max_points) return -2;
    if ((size_t)(c->hcount + 1) * 2 > (size_t)c->hmask + 1) {
        uint32_t oldsize = c->hmask + 1;
        uint32_t *oldkeys = c->hkeys;
        int32_t *oldvals = c->hvals;
        c->hkeys = NULL;
        c->hvals = NULL;
        if (codec_hash_alloc(c, oldsize * 2) < 0) {
            c->hkeys = oldkeys;
            c->hvals = oldvals;
            return -1;
        }
        for (uint32_t i = 0; i < oldsize; i++) {
            if (oldvals[i] < 0) continue;
            uint32_t j = hash_id(oldkeys[i]) & c->hmask;
            while (c->hvals[j] >= 0) j = (j + 1) & c->hmask;
            c->hkeys[j] = oldkeys[i];
            c->hvals[j] = oldvals[i];
            c->hcount++;
        }
        PyMem_Free(oldkeys);
        PyMem_Free(oldvals);
        h = hash_id(id) & c->hmask;
        while (c->hvals[h] >= 0) h = (h + 1) & c->hmask;
    }
    if (c->npts == c->cappts) {
        if (c->cappts > (Py_ssize_t)0x3FFFFFFF) { PyErr_NoMemory(); return -1; }
        Point *pts = PyMem_Realloc(c->pts, sizeof(Point) * (size_t)c->cappts * 2);
        if (!pts) { PyErr_NoMemory(); return -1; }
        c->pts = pts;
        c->cappts *= 2;
    }
    Py_ssize_t idx = c->npts++;
    point_init(&c->pts[idx], c->v1c);
    c->pts[idx].next_id = (id + 1) & c->id_mask;
    c->hkeys[h] = id;
    c->hvals[h] = (int32_t)idx;
    c->hcount++;
    return idx;
}

static inline int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

static inline void codec_deltas(Codec *c, int64_t previous, int64_t ts) {
    uint64_t diff = (uint64_t)previous - (uint64_t)ts;
    int64_t delta = (int64_t)diff;
    if (delta < 0) delta = (int64_t)(0 - diff); /* INT64_MIN stays INT64_MIN, as deployed */
    int64_t *d = c->d;
    if (delta < d[3] && delta != d[0] && delta != d[1] && delta != d[2]) {
        if (delta < d[0]) {
            d[3] = d[2]; d[2] = d[1]; d[1] = d[0]; d[0] = delta;
        } else if (delta < d[1]) {
            d[3] = d[2]; d[2] = d[1]; d[1] = delta;
        } else if (delta < d[2]) {
            d[3] = d[2]; d[2] = delta;
        } else {
            d[3] = delta;
        }
    }
    c->ts2 = previous;
    c->ts1 = ts;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoder */

typedef struct {
    PyObject_HEAD
    Codec c;
    uint8_t *buf;
    Py_ssize_t cap, pos, bidx, count;
    uint32_t cache;
    int nbits;
} Encoder;

static inline void enc_bits(Encoder *e, uint32_t value, int length) {
    if (e->bidx < 0) e->bidx = e->pos++;
    e->cache = (e->cache << length) | value;
    e->nbits += length;
    while (e->nbits > 7) {
        e->nbits -= 8;
        e->buf[e->bidx] = (uint8_t)(e->cache >> e->nbits);
        if (e->nbits > 0) e->bidx = e->pos++;
        else e->bidx = -1;
    }
    e->cache &= (1u << e->nbits) - 1u;
}

static inline void enc_code(Encoder *e, Point *p, int code) {
    switch (p->mode) {
    case 4:
        if (code == p->m1) enc_bits(e, 1, 1);
        else if (code == p->m2) enc_bits(e, 1, 2);
        else if (code == p->m3) enc_bits(e, 1, 3);
        else enc_bits(e, (uint32_t)code, 8);
        break;
    case 1:
        enc_bits(e, (uint32_t)code, 5);
        break;
    case 2:
        if (code == p->m1) enc_bits(e, 1, 1);
        else enc_bits(e, (uint32_t)code, 6);
        break;
    default:
        if (code == p->m1) enc_bits(e, 1, 1);
        else if (code == p->m2) enc_bits(e, 1, 2);
        else enc_bits(e, (uint32_t)code, 7);
        break;
    }
    point_count(p, code);
}

static inline void enc_xor(Encoder *e, Point *last, int code, int width, uint32_t changed) {
    enc_code(e, last, code);
    if (width & 4) {
        enc_bits(e, changed & 15u, 4);
        changed >>= 4;
    }
    for (int i = 0; i < (width >> 3); i++) {
        e->buf[e->pos++] = (uint8_t)changed;
        changed >>= 8;
    }
}

static inline void enc_varint(Encoder *e, uint64_t value, int limit) {
    for (int i = 0; i < limit && value >= 128; i++) {
        e->buf[e->pos++] = (uint8_t)((value & 0x7F) | 0x80);
        value >>= 7;
    }
    e->buf[e->pos++] = (uint8_t)value;
}

static void enc_timestamp(Encoder *e, Point *last, int64_t ts) {
    Codec *c = &e->c;
    int64_t ts1 = c->ts1;
    int64_t *d = c->d;
    if (c->ts2 == ts) {
        enc_code(e, last, c->ts2c);
    } else if (ts1 < ts) {
        if (wrap_add(ts1, d[0]) == ts) enc_code(e, last, c->td);
        else if (wrap_add(ts1, d[1]) == ts) enc_code(e, last, c->td + 1);
        else if (wrap_add(ts1, d[2]) == ts) enc_code(e, last, c->td + 2);
        else if (wrap_add(ts1, d[3]) == ts) enc_code(e, last, c->td + 3);
        else {
            enc_code(e, last, c->txor);
            enc_varint(e, (uint64_t)ts ^ (uint64_t)ts1, 8);
        }
    } else {
        if (wrap_sub(ts1, d[0]) == ts) enc_code(e, last, c->td + 4);
        else if (wrap_sub(ts1, d[1]) == ts) enc_code(e, last, c->td + 5);
        else if (wrap_sub(ts1, d[2]) == ts) enc_code(e, last, c->td + 6);
        else if (wrap_sub(ts1, d[3]) == ts) enc_code(e, last, c->td + 7);
        else {
            enc_code(e, last, c->txor);
            enc_varint(e, (uint64_t)ts ^ (uint64_t)ts1, 8);
        }
    }
    codec_deltas(c, ts1, ts);
}

/* 1 added, 0 block full, -1 error set */
static int enc_add(Encoder *e, uint64_t id64, int64_t ts, uint32_t flags, uint32_t vbits) {
    Codec *c = &e->c;
    if (e->cap - e->pos < HEADROOM) return 0;
    if (id64 > c->id_mask) {
        PyErr_Format(PyExc_ValueError, "point id %llu does not fit %d bits",
                     (unsigned long long)id64, c->id_bits);
        return -1;
    }
    uint32_t id = (uint32_t)id64;
    Py_ssize_t idx = codec_point(c, id);
    if (idx < 0) return -1;
    Point *pt = &c->pts[idx];
    Point *last = &c->pts[c->last];
    if (last->next_id != id) {
        uint32_t changed = id ^ last->next_id;
        int k = 0;
        while (k < c->id_codes - 1 && (uint64_t)changed >= ((uint64_t)1 << ID_WIDTHS[k])) k++;
        enc_xor(e, last, k + 1, ID_WIDTHS[k], changed);
        last->next_id = id;
    }
    if (c->ts1 != ts) enc_timestamp(e, last, ts);
    if (pt->flags1 != flags) {
        if (pt->flags2 == flags) {
            enc_code(e, last, c->f2);
        } else {
            enc_code(e, last, c->f7);
            enc_varint(e, flags, 4);
        }
        pt->flags2 = pt->flags1;
        pt->flags1 = flags;
    }
    if (pt->v1 == vbits) {
        enc_code(e, last, c->v1c);
    } else if (pt->v2 == vbits) {
        enc_code(e, last, c->v1c + 1);
        pt->v2 = pt->v1;
        pt->v1 = vbits;
    } else {
        if (pt->v3 == vbits) {
            enc_code(e, last, c->v1c + 2);
        } else if (vbits == 0) {
            enc_code(e, last, c->vzero);
        } else {
            uint32_t changed = vbits ^ pt->v1;
            int width = 4;
            while (width < 32 && (uint64_t)changed >= ((uint64_t)1 << width)) width += 4;
            enc_xor(e, last, c->vxor4 + (width >> 2) - 1, width, changed);
        }
        pt->v3 = pt->v2;
        pt->v2 = pt->v1;
        pt->v1 = vbits;
    }
    c->last = idx;
    e->count++;
    return 1;
}

static int enc_begin(Encoder *e, Py_ssize_t capacity) {
    uint8_t *buf = PyMem_Realloc(e->buf, (size_t)capacity + SLACK);
    if (!buf) { PyErr_NoMemory(); return -1; }
    e->buf = buf;
    e->cap = capacity;
    e->pos = 0;
    e->bidx = -1;
    e->cache = 0;
    e->nbits = 0;
    e->count = 0;
    return 0;
}

static int Encoder_init(Encoder *e, PyObject *args, PyObject *kwds) {
    int id_codes, id_bits;
    static char *kwlist[] = {"id_codes", "id_bits", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii", kwlist, &id_codes, &id_bits)) return -1;
    codec_free(&e->c);
    if (codec_init(&e->c, id_codes, id_bits) < 0) return -1;
    return enc_begin(e, 32768 - 3);
}

static void Encoder_dealloc(Encoder *e) {
    codec_free(&e->c);
    PyMem_Free(e->buf);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyObject *Encoder_reset(Encoder *e, PyObject *unused) {
    if (codec_reset(&e->c) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Encoder_begin(Encoder *e, PyObject *arg) {
    Py_ssize_t capacity = PyLong_AsSsize_t(arg);
    if (capacity == -1 && PyErr_Occurred()) return NULL;
    if (capacity < HEADROOM + 1 || capacity > 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "block capacity out of range");
        return NULL;
    }
    if (enc_begin(e, capacity) < 0) return NULL;
    Py_RETURN_NONE;
}

static int as_u32(PyObject *o, uint32_t *out, const char *what) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    if (v > 0xFFFFFFFFull) {
        PyErr_Format(PyExc_OverflowError, "%s %llu does not fit 32 bits", what, v);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static PyObject *Encoder_add(Encoder *e, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "add(id, timestamp, flags, value_bits)");
        return NULL;
    }
    unsigned long long id = PyLong_AsUnsignedLongLong(args[0]);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    long long ts = PyLong_AsLongLong(args[1]);
    if (ts == -1 && PyErr_Occurred()) return NULL;
    uint32_t flags, vbits;
    if (as_u32(args[2], &flags, "flags") < 0 || as_u32(args[3], &vbits, "value bits") < 0)
        return NULL;
    int r = enc_add(e, id, ts, flags, vbits);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

static int get_column(PyObject *o, Py_buffer *view, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != itemsize || view->len % itemsize) {
        PyErr_Format(PyExc_TypeError, "%s column must have %zd-byte items", what, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *Encoder_add_columns(Encoder *e, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "add_columns(ids, timestamps, flags, value_bits, start)");
        return NULL;
    }
    Py_buffer vi, vt, vf, vv;
    Py_ssize_t start = PyLong_AsSsize_t(args[4]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (get_column(args[0], &vi, 4, "ids") < 0) return NULL;
    if (get_column(args[1], &vt, 8, "timestamps") < 0) goto fail1;
    if (get_column(args[2], &vf, 4, "flags") < 0) goto fail2;
    if (get_column(args[3], &vv, 4, "values") < 0) goto fail3;
    Py_ssize_t n = vi.len / 4;
    if (vt.len / 8 != n || vf.len / 4 != n || vv.len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "columns differ in length");
        goto fail4;
    }
    if (start < 0 || start > n) {
        PyErr_SetString(PyExc_ValueError, "start outside the columns");
        goto fail4;
    }
    const uint32_t *ids = vi.buf, *flags = vf.buf, *vbits = vv.buf;
    const int64_t *ts = vt.buf;
    Py_ssize_t i = start;
    for (; i < n; i++) {
        int r = enc_add(e, ids[i], ts[i], flags[i], vbits[i]);
        if (r < 0) goto fail4;
        if (r == 0) break;
    }
    PyBuffer_Release(&vv);
    PyBuffer_Release(&vf);
    PyBuffer_Release(&vt);
    PyBuffer_Release(&vi);
    return PyLong_FromSsize_t(i);
fail4:
    PyBuffer_Release(&vv);
fail3:
    PyBuffer_Release(&vf);
fail2:
    PyBuffer_Release(&vt);
fail1:
    PyBuffer_Release(&vi);
    return NULL;
}

static PyObject *Encoder_finish(Encoder *e, PyObject *unused) {
    if (e->nbits > 0) {
        enc_code(e, &e->c.pts[e->c.last], 0); /* END_OF_STREAM only when bits are pending */
        if (e->nbits > 0) e->buf[e->bidx] = (uint8_t)(e->cache << (8 - e->nbits));
    }
    PyObject *data = PyBytes_FromStringAndSize((const char *)e->buf, e->pos);
    if (!data) return NULL;
    e->pos = 0;
    e->bidx = -1;
    e->cache = 0;
    e->nbits = 0;
    e->count = 0;
    return data;
}

static PyMethodDef Encoder_methods[] = {
    {"reset", (PyCFunction)Encoder_reset, METH_NOARGS, "Forget all point and time state."},
    {"begin", (PyCFunction)Encoder_begin, METH_O, "Start a block of the given payload capacity."},
    {"add", (PyCFunction)(void (*)(void))Encoder_add, METH_FASTCALL,
     "add(id, timestamp, flags, value_bits) -> bool (False: block full)."},
    {"add_columns", (PyCFunction)(void (*)(void))Encoder_add_columns, METH_FASTCALL,
     "add_columns(ids, timestamps, flags, value_bits, start) -> index of first not added."},
    {"finish", (PyCFunction)Encoder_finish, METH_NOARGS, "Close the block; returns the payload."},
    {NULL},
};

static PyMemberDef Encoder_members[] = {
    {"count", T_PYSSIZET, offsetof(Encoder, count), READONLY, "measurements in the block"},
    {NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gridbind.sttp._tssc.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TSSC encoder core: Encoder(id_codes, id_bits).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_methods = Encoder_methods,
    .tp_members = Encoder_members,
};

/* ------------------------------------------------------------------------------------------ */
/* Decoder */

typedef struct {
    PyObject_HEAD
    Codec c;
} Decoder;

typedef struct {
    const uint8_t *data;
    Py_ssize_t pos, end;
    uint32_t cache;
    int nbits;
} Reader;

static inline int rd_bit(Reader *r) {
    if (r->nbits == 0) {
        if (r->pos >= r->end) return -1;
        r->cache = r->data[r->pos++];
        r->nbits = 8;
    }
    r->nbits--;
    return (int)((r->cache >> r->nbits) & 1u);
}

static inline int rd_bits(Reader *r, int count) {
    int value = 0;
    for (int i = 0; i < count; i++) {
        int b = rd_bit(r);
        if (b < 0) return -1;
        value = (value << 1) | b;
    }
    return value;
}

static inline int rd_code(Reader *r, Point *p) {
    int code, b;
    switch (p->mode) {
    case 4:
        if ((b = rd_bit(r)) < 0) return -1;
        if (b) { code = p->m1; break; }
        if ((b = rd_bit(r)) < 0) return -1;
        if (b) { code = p->m2; break; }
        if ((b = rd_bit(r)) < 0) return -1;
        if (b) { code = p->m3; break; }
        code = rd_bits(r, 5);
        break;
    case 1:
        code = rd_bits(r, 5);
        break;
    case 2:
        if ((b = rd_bit(r)) < 0) return -1;
        code = b ? p->m1 : rd_bits(r, 5);
        break;
    default:
        if ((b = rd_bit(r)) < 0) return -1;
        if (b) { code = p->m1; break; }
        if ((b = rd_bit(r)) < 0) return -1;
        code = b ? p->m2 : rd_bits(r, 5);
        break;
    }
    if (code < 0) return -1;
    point_count(p, code);
    return code;
}

/* 0 ok, -1 truncated */
static inline int rd_xor(Reader *r, int width, uint32_t *out) {
    uint32_t value = 0;
    int shift = 0;
    if (width & 4) {
        int v = rd_bits(r, 4);
        if (v < 0) return -1;
        value = (uint32_t)v;
        shift = 4;
    }
    for (int i = 0; i < (width >> 3); i++) {
        if (r->pos >= r->end) return -1;
        value |= (uint32_t)r->data[r->pos++] << shift;
        shift += 8;
    }
    *out = value;
    return 0;
}

static inline int rd_varint(Reader *r, int limit, uint64_t *out) {
    uint64_t value = 0;
    int shift = 0;
    for (int i = 0; i < limit; i++) {
        if (r->pos >= r->end) return -1;
        uint8_t byte = r->data[r->pos++];
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 128) { *out = value; return 0; }
        shift += 7;
    }
    if (r->pos >= r->end) return -1;
    value |= (uint64_t)r->data[r->pos++] << shift;
    *out = value;
    return 0;
}

static int Decoder_init(Decoder *d, PyObject *args, PyObject *kwds) {
    int id_codes, id_bits;
    static char *kwlist[] = {"id_codes", "id_bits", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii", kwlist, &id_codes, &id_bits)) return -1;
    codec_free(&d->c);
    return codec_init(&d->c, id_codes, id_bits);
}

static void Decoder_dealloc(Decoder *d) {
    codec_free(&d->c);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyObject *Decoder_reset(Decoder *d, PyObject *unused) {
    if (codec_reset(&d->c) < 0) return NULL;
    Py_RETURN_NONE;
}

typedef struct {
    uint32_t *ids, *flags, *values;
    int64_t *ts;
    Py_ssize_t n, cap;
} Out;

static int out_grow(Out *o, Py_ssize_t cap) {
    uint32_t *ids = PyMem_Realloc(o->ids, sizeof(uint32_t) * (size_t)cap);
    if (ids) o->ids = ids;
    uint32_t *flags = PyMem_Realloc(o->flags, sizeof(uint32_t) * (size_t)cap);
    if (flags) o->flags = flags;
    uint32_t *values = PyMem_Realloc(o->values, sizeof(uint32_t) * (size_t)cap);
    if (values) o->values = values;
    int64_t *ts = PyMem_Realloc(o->ts, sizeof(int64_t) * (size_t)cap);
    if (ts) o->ts = ts;
    if (!ids || !flags || !values || !ts) { PyErr_NoMemory(); return -1; }
    o->cap = cap;
    return 0;
}

static void out_free(Out *o) {
    PyMem_Free(o->ids);
    PyMem_Free(o->flags);
    PyMem_Free(o->values);
    PyMem_Free(o->ts);
}

enum {
    DEC_MORE = 1, DEC_END = 0, DEC_TRUNCATED = -1, DEC_BADCODE = -2, DEC_NOMEM = -3,
    DEC_TOOMANYPOINTS = -4
};

static int dec_one(Codec *c, Reader *r, Out *o, const char **what, int *badcode) {
    if (r->pos >= r->end && r->nbits == 0) return DEC_END;
    Point *last = &c->pts[c->last];
    int code = rd_code(r, last);
    if (code < 0) return DEC_TRUNCATED;
    if (code == 0) return DEC_END;
    if (code <= c->id_codes) {
        uint32_t changed;
        if (rd_xor(r, ID_WIDTHS[code - 1], &changed) < 0) return DEC_TRUNCATED;
        last->next_id ^= changed;
        code = rd_code(r, last);
        if (code < 0) return DEC_TRUNCATED;
        if (code < c->td) { *what = "a timestamp, flags or value"; *badcode = code; return DEC_BADCODE; }
    }
    uint32_t pid = last->next_id;
    Py_ssize_t lastidx = c->last;
    Py_ssize_t idx = codec_point(c, pid);
    if (idx == -2) return DEC_TOOMANYPOINTS;
    if (idx < 0) return DEC_NOMEM;
    last = &c->pts[lastidx]; /* the pool may have moved */
    Point *pt = &c->pts[idx];
    int64_t ts;
    if (code <= c->txor) {
        int64_t ts1 = c->ts1;
        int offset = code - c->td;
        if (offset < 4) ts = wrap_add(ts1, c->d[offset]);
        else if (offset < 8) ts = wrap_sub(ts1, c->d[offset - 4]);
        else if (code == c->ts2c) ts = c->ts2;
        else {
            uint64_t x;
            if (rd_varint(r, 8, &x) < 0) return DEC_TRUNCATED;
            ts = (int64_t)((uint64_t)ts1 ^ x);
        }
        codec_deltas(c, ts1, ts);
        code = rd_code(r, last);
        if (code < 0) return DEC_TRUNCATED;
        if (code < c->f2) { *what = "flags or a value"; *badcode = code; return DEC_BADCODE; }
    } else {
        ts = c->ts1;
    }
    uint32_t flags;
    if (code <= c->f7) {
        if (code == c->f2) flags = pt->flags2;
        else {
            uint64_t x;
            if (rd_varint(r, 4, &x) < 0) return DEC_TRUNCATED;
            flags = (uint32_t)x;
        }
        pt->flags2 = pt->flags1;
        pt->flags1 = flags;
        code = rd_code(r, last);
        if (code < 0) return DEC_TRUNCATED;
        if (code < c->v1c) { *what = "a value"; *badcode = code; return DEC_BADCODE; }
    } else {
        flags = pt->flags1;
    }
    uint32_t value;
    if (code == c->v1c) {
        value = pt->v1;
    } else if (code == c->v1c + 1) {
        value = pt->v2;
        pt->v2 = pt->v1;
        pt->v1 = value;
    } else {
        if (code == c->v1c + 2) value = pt->v3;
        else if (code == c->vzero) value = 0;
        else if (code <= c->vxor32) {
            uint32_t changed;
            if (rd_xor(r, (code - c->vxor4 + 1) * 4, &changed) < 0) return DEC_TRUNCATED;
            value = changed ^ pt->v1;
        } else { *what = "a value"; *badcode = code; return DEC_BADCODE; }
        pt->v3 = pt->v2;
        pt->v2 = pt->v1;
        pt->v1 = value;
    }
    c->last = idx;
    if (o->n == o->cap && out_grow(o, o->cap * 2) < 0) return DEC_NOMEM;
    o->ids[o->n] = pid;
    o->ts[o->n] = ts;
    o->flags[o->n] = flags;
    o->values[o->n] = value;
    o->n++;
    return DEC_MORE;
}

/* decode(payload, limit=-1, max_points=-1): at most `limit` measurements (the work per block is
 * bounded by the count its packet declares), at most `max_points` distinct point ids held. */
static PyObject *Decoder_decode(Decoder *d, PyObject *args) {
    Py_buffer view;
    Py_ssize_t limit = -1, max_points = -1;
    if (!PyArg_ParseTuple(args, "y*|nn", &view, &limit, &max_points)) return NULL;
    Reader r = {view.buf, 0, view.len, 0, 0};
    Out o = {0};
    PyObject *result = NULL;
    const char *what = "";
    int badcode = 0, status;
    Py_ssize_t cap = view.len / 2 + 16;
    if (limit >= 0 && limit + 1 < cap) cap = limit + 1;
    d->c.max_points = max_points;
    if (out_grow(&o, cap) < 0) goto done;
    while ((status = dec_one(&d->c, &r, &o, &what, &badcode)) == DEC_MORE) {
        if (limit >= 0 && o.n > limit) {
            PyErr_Format(PyExc_ValueError, "TSSC block holds more than %zd measurements", limit);
            goto done;
        }
    }
    if (status == DEC_TOOMANYPOINTS) {
        PyErr_Format(PyExc_ValueError, "TSSC stream names more than %zd distinct point ids",
                     max_points);
        goto done;
    }
    if (status == DEC_TRUNCATED) {
        PyErr_Format(PyExc_ValueError, "TSSC block truncated at byte %zd of %zd after %zd measurements",
                     r.pos, r.end, o.n);
        goto done;
    }
    if (status == DEC_BADCODE) {
        PyErr_Format(PyExc_ValueError, "invalid TSSC code %d for %s at byte %zd", badcode, what, r.pos);
        goto done;
    }
    if (status == DEC_NOMEM) goto done;
    if (r.pos != r.end) {
        PyErr_Format(PyExc_ValueError, "%zd bytes follow the end-of-stream code after %zd measurements",
                     r.end - r.pos, o.n);
        goto done;
    }
    result = Py_BuildValue("ny#y#y#y#", o.n, (const char *)o.ids, o.n * 4, (const char *)o.ts,
                           o.n * 8, (const char *)o.flags, o.n * 4, (const char *)o.values, o.n * 4);
done:
    out_free(&o);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef Decoder_methods[] = {
    {"reset", (PyCFunction)Decoder_reset, METH_NOARGS, "Forget all point and time state."},
    {"decode", (PyCFunction)Decoder_decode, METH_VARARGS,
     "decode(payload, limit=-1, max_points=-1) -> (count, ids, timestamps, flags, value_bits) "
     "as native-endian bytes."},
    {NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gridbind.sttp._tssc.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TSSC decoder core: Decoder(id_codes, id_bits).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "gridbind.sttp._tssc", "Compiled TSSC core (see gridbind.sttp.tssc).", -1,
};

PyMODINIT_FUNC PyInit__tssc(void) {
    if (PyType_Ready(&EncoderType) < 0 || PyType_Ready(&DecoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
