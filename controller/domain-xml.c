#include <config.h>
#include "domain-xml.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <libxml/xmlwriter.h>

#include "util.h"

/* Small wrappers: every call's result is collected in *ok so that one
 * check at the end covers them all. */
static void start(xmlTextWriterPtr w, bool *ok, const char *el)
{
    if (xmlTextWriterStartElement(w, BAD_CAST el) < 0)
        *ok = false;
}

static void end(xmlTextWriterPtr w, bool *ok)
{
    if (xmlTextWriterEndElement(w) < 0)
        *ok = false;
}

static void attr(xmlTextWriterPtr w, bool *ok, const char *name, const char *value)
{
    if (xmlTextWriterWriteAttribute(w, BAD_CAST name, BAD_CAST value) < 0)
        *ok = false;
}

static void text_el(xmlTextWriterPtr w, bool *ok, const char *el, const char *text)
{
    if (xmlTextWriterWriteElement(w, BAD_CAST el, BAD_CAST text) < 0)
        *ok = false;
}

static void int_el(xmlTextWriterPtr w, bool *ok, const char *el, const char *unit, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    start(w, ok, el);
    if (unit)
        attr(w, ok, "unit", unit);
    if (xmlTextWriterWriteString(w, BAD_CAST buf) < 0)
        *ok = false;
    end(w, ok);
}

static xmlTextWriterPtr writer_new(xmlBufferPtr *ret_buf)
{
    xmlBufferPtr buf = xmlBufferCreate();
    if (!buf)
        return NULL;
    xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
    if (!w) {
        xmlBufferFree(buf);
        return NULL;
    }
    xmlTextWriterSetIndent(w, 1);
    xmlTextWriterSetIndentString(w, BAD_CAST "  ");
    *ret_buf = buf;
    return w;
}

static char *writer_finish(xmlTextWriterPtr w, xmlBufferPtr buf, bool ok)
{
    if (xmlTextWriterEndDocument(w) < 0)
        ok = false;
    xmlFreeTextWriter(w);     /* flushes into buf */
    char *out = ok ? xstrdup((const char *) xmlBufferContent(buf)) : NULL;
    xmlBufferFree(buf);
    return out;
}

char *domain_xml_build(const struct domain_spec *s)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = writer_new(&buf);
    if (!w)
        return NULL;
    bool ok = true;
    char num[32];
    start(w, &ok, "domain");
    attr(w, &ok, "type", s->type ? s->type : "qemu");
    text_el(w, &ok, "name", s->name);
    if (s->uuid)
        text_el(w, &ok, "uuid", s->uuid);
    if (s->title)
        text_el(w, &ok, "title", s->title);

    start(w, &ok, "metadata");
    if (xmlTextWriterStartElementNS(w, BAD_CAST "yunguan", BAD_CAST "vm",
                                    BAD_CAST DOMAIN_XML_NAMESPACE) < 0)
        ok = false;
    snprintf(num, sizeof num, "%" PRId64, s->vm_id);
    attr(w, &ok, "id", num);
    snprintf(num, sizeof num, "%" PRId64, s->request_id);
    attr(w, &ok, "request", num);
    if (s->department)
        attr(w, &ok, "department", s->department);
    if (s->ipv4) {
        if (xmlTextWriterWriteElementNS(w, BAD_CAST "yunguan", BAD_CAST "ipv4", NULL,
                                        BAD_CAST s->ipv4) < 0)
            ok = false;
    }
    if (s->ipv6) {
        if (xmlTextWriterWriteElementNS(w, BAD_CAST "yunguan", BAD_CAST "ipv6", NULL,
                                        BAD_CAST s->ipv6) < 0)
            ok = false;
    }
    end(w, &ok);    /* yunguan:vm */
    end(w, &ok);    /* metadata */

    int_el(w, &ok, "memory", "MiB", s->memory_mib);
    int_el(w, &ok, "vcpu", NULL, s->vcpus);
    start(w, &ok, "os");
    start(w, &ok, "type");
    attr(w, &ok, "arch", "x86_64");
    if (xmlTextWriterWriteString(w, BAD_CAST "hvm") < 0)
        ok = false;
    end(w, &ok);
    start(w, &ok, "boot");
    attr(w, &ok, "dev", "hd");
    end(w, &ok);
    end(w, &ok);    /* os */
    start(w, &ok, "features");
    start(w, &ok, "acpi");
    end(w, &ok);
    end(w, &ok);
    text_el(w, &ok, "on_poweroff", "destroy");
    text_el(w, &ok, "on_reboot", "restart");
    text_el(w, &ok, "on_crash", "destroy");

    start(w, &ok, "devices");
    if (s->volume) {
        start(w, &ok, "disk");
        attr(w, &ok, "type", "volume");
        attr(w, &ok, "device", "disk");
        start(w, &ok, "driver");
        attr(w, &ok, "name", "qemu");
        attr(w, &ok, "type", "qcow2");
        end(w, &ok);
        start(w, &ok, "source");
        attr(w, &ok, "pool", s->pool);
        attr(w, &ok, "volume", s->volume);
        end(w, &ok);
        start(w, &ok, "target");
        attr(w, &ok, "dev", "vda");
        attr(w, &ok, "bus", "virtio");
        end(w, &ok);
        end(w, &ok);
    }
    if (s->bridge) {
        start(w, &ok, "interface");
        attr(w, &ok, "type", "bridge");
        start(w, &ok, "source");
        attr(w, &ok, "bridge", s->bridge);
        end(w, &ok);
        if (s->mac) {
            start(w, &ok, "mac");
            attr(w, &ok, "address", s->mac);
            end(w, &ok);
        }
        start(w, &ok, "model");
        attr(w, &ok, "type", "virtio");
        end(w, &ok);
        end(w, &ok);
    }
    start(w, &ok, "console");
    attr(w, &ok, "type", "pty");
    end(w, &ok);
    start(w, &ok, "memballoon");
    attr(w, &ok, "model", "none");
    end(w, &ok);
    end(w, &ok);    /* devices */
    end(w, &ok);    /* domain */
    return writer_finish(w, buf, ok);
}

char *domain_xml_volume(const char *name, uint64_t capacity, const char *backing,
                        const char *backing_format)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = writer_new(&buf);
    if (!w)
        return NULL;
    bool ok = true;
    start(w, &ok, "volume");
    text_el(w, &ok, "name", name);
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, capacity);
    start(w, &ok, "capacity");
    attr(w, &ok, "unit", "bytes");
    if (xmlTextWriterWriteString(w, BAD_CAST num) < 0)
        ok = false;
    end(w, &ok);
    start(w, &ok, "target");
    start(w, &ok, "format");
    attr(w, &ok, "type", "qcow2");
    end(w, &ok);
    end(w, &ok);
    if (backing) {
        start(w, &ok, "backingStore");
        text_el(w, &ok, "path", backing);
        start(w, &ok, "format");
        attr(w, &ok, "type", backing_format ? backing_format : "qcow2");
        end(w, &ok);
        end(w, &ok);
    }
    end(w, &ok);
    return writer_finish(w, buf, ok);
}
