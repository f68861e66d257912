/* SPDX-License-Identifier: GPL-3.0-or-later
 *
 * janus.plugin.cm.audioroom: the Janus glue.
 *
 * This file keeps the shape of a Janus plugin (the vtable, the session table with reference
 * counts, the queue of asynchronous requests and its handler thread, configuration through
 * Janus's own parser, SDP through Janus's sdp-utils, Jansson on one side and JSON text on the
 * other) and decides nothing: every request, room, mix and recording is the business of the
 * Rust core behind include/audioroom.h. Only `create` is exported from the shared object.
 */

#include <jansson.h>
#include <glib.h>

#include "plugins/plugin.h"
#include "config.h"
#include "debug.h"
#include "mutex.h"
#include "refcount.h"
#include "rtp.h"
#include "sdp-utils.h"
#include "utils.h"

#include "audioroom.h"

#define AUDIOROOM_VERSION 1
#define AUDIOROOM_VERSION_STRING "0.1.0"
#define AUDIOROOM_DESCRIPTION "Audio conference rooms named by strings, mixed with Opus, every room recorded to WAV with job files."
#define AUDIOROOM_NAME "JANUS Audioroom plugin"
#define AUDIOROOM_AUTHOR "janus-gateway-audioroom developers"
#define AUDIOROOM_PACKAGE "janus.plugin.cm.audioroom"

/* The vtable */
janus_plugin *create(void);
static int janus_audioroom_init(janus_callbacks *callback, const char *config_path);
static void janus_audioroom_destroy(void);
static int janus_audioroom_get_api_compatibility(void);
static int janus_audioroom_get_version(void);
static const char *janus_audioroom_get_version_string(void);
static const char *janus_audioroom_get_description(void);
static const char *janus_audioroom_get_name(void);
static const char *janus_audioroom_get_author(void);
static const char *janus_audioroom_get_package(void);
static void janus_audioroom_create_session(janus_plugin_session *handle, int *error);
static struct janus_plugin_result *janus_audioroom_handle_message(janus_plugin_session *handle, char *transaction, json_t *message, json_t *jsep);
static json_t *janus_audioroom_handle_admin_message(json_t *message);
static void janus_audioroom_setup_media(janus_plugin_session *handle);
static void janus_audioroom_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet);
static void janus_audioroom_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet);
static void janus_audioroom_hangup_media(janus_plugin_session *handle);
static void janus_audioroom_destroy_session(janus_plugin_session *handle, int *error);
static json_t *janus_audioroom_query_session(janus_plugin_session *handle);

static janus_plugin janus_audioroom_plugin =
	JANUS_PLUGIN_INIT(
		.init = janus_audioroom_init,
		.destroy = janus_audioroom_destroy,
		.get_api_compatibility = janus_audioroom_get_api_compatibility,
		.get_version = janus_audioroom_get_version,
		.get_version_string = janus_audioroom_get_version_string,
		.get_description = janus_audioroom_get_description,
		.get_name = janus_audioroom_get_name,
		.get_author = janus_audioroom_get_author,
		.get_package = janus_audioroom_get_package,
		.create_session = janus_audioroom_create_session,
		.handle_message = janus_audioroom_handle_message,
		.handle_admin_message = janus_audioroom_handle_admin_message,
		.setup_media = janus_audioroom_setup_media,
		.incoming_rtp = janus_audioroom_incoming_rtp,
		.incoming_rtcp = janus_audioroom_incoming_rtcp,
		.hangup_media = janus_audioroom_hangup_media,
		.destroy_session = janus_audioroom_destroy_session,
		.query_session = janus_audioroom_query_session,
	);

__attribute__((visibility("default"))) janus_plugin *create(void) {
	JANUS_LOG(LOG_VERB, "%s created!\n", AUDIOROOM_NAME);
	return &janus_audioroom_plugin;
}

static volatile gint initialized = 0, stopping = 0;
static janus_callbacks *gateway = NULL;

/* One Janus handle's state: the Rust session plus what Janus's plumbing needs. */
typedef struct janus_audioroom_session {
	janus_plugin_session *handle;
	AudioroomSession *core;
	/* The SDP o= line stays constant across renegotiations; its version grows. */
	gint64 sdp_sessid, sdp_version;
	volatile gint hangingup;
	volatile gint destroyed;
	janus_refcount ref;
} janus_audioroom_session;

static GHashTable *sessions = NULL;
static janus_mutex sessions_mutex = JANUS_MUTEX_INITIALIZER;

/* A queued asynchronous request. */
typedef struct janus_audioroom_message {
	janus_plugin_session *handle;
	char *transaction;
	json_t *message;
	json_t *jsep;
} janus_audioroom_message;

static GAsyncQueue *messages = NULL;
static janus_audioroom_message exit_message;
static GThread *handler_thread = NULL;

static void janus_audioroom_session_unref_on_remove(janus_audioroom_session *session) {
	if(session && g_atomic_int_compare_and_exchange(&session->destroyed, 0, 1))
		janus_refcount_decrease(&session->ref);
}

static void janus_audioroom_session_free(const janus_refcount *session_ref) {
	janus_audioroom_session *session = janus_refcount_containerof(session_ref, janus_audioroom_session, ref);
	audioroom_session_free(session->core);
	/* Give back the reference the core took for this plugin on the handle */
	janus_refcount_decrease(&session->handle->ref);
	g_free(session);
}

static void janus_audioroom_message_free(janus_audioroom_message *msg) {
	if(!msg || msg == &exit_message)
		return;
	if(msg->handle && msg->handle->plugin_handle) {
		janus_audioroom_session *session = (janus_audioroom_session *)msg->handle->plugin_handle;
		janus_refcount_decrease(&session->ref);
	}
	g_free(msg->transaction);
	if(msg->message)
		json_decref(msg->message);
	if(msg->jsep)
		json_decref(msg->jsep);
	g_free(msg);
}

/* Must be called with sessions_mutex held. */
static janus_audioroom_session *janus_audioroom_lookup_session(janus_plugin_session *handle) {
	if(sessions == NULL || !g_hash_table_contains(sessions, handle))
		return NULL;
	return (janus_audioroom_session *)handle->plugin_handle;
}

/* Looks a session up and takes a reference on it; NULL when gone. */
static janus_audioroom_session *janus_audioroom_session_get(janus_plugin_session *handle) {
	janus_mutex_lock(&sessions_mutex);
	janus_audioroom_session *session = janus_audioroom_lookup_session(handle);
	if(session && !g_atomic_int_get(&session->destroyed)) {
		janus_refcount_increase(&session->ref);
	} else {
		session = NULL;
	}
	janus_mutex_unlock(&sessions_mutex);
	return session;
}

/* ---- Callbacks the Rust core uses to reach Janus ---- */

static void host_log(AudioroomLogLevel level, const char *line) {
	int janus_level = (int)level;
	if(janus_level < LOG_FATAL || janus_level > LOG_DBG)
		janus_level = LOG_INFO;
	JANUS_LOG(janus_level, "[audioroom] %s\n", line);
}

static gboolean handle_usable(janus_plugin_session *handle) {
	return handle != NULL && !g_atomic_int_get(&handle->stopped) && gateway != NULL;
}

static json_t *json_from_core(const char *text) {
	if(text == NULL)
		return NULL;
	json_error_t error;
	json_t *value = json_loads(text, JSON_DECODE_ANY, &error);
	if(value == NULL)
		JANUS_LOG(LOG_ERR, "[audioroom] Invalid JSON from the core: %s\n", error.text);
	return value;
}

static int host_push_event(void *handle, const char *transaction, const char *event_json, const char *jsep_json) {
	janus_plugin_session *h = (janus_plugin_session *)handle;
	if(!handle_usable(h))
		return -1;
	json_t *event = json_from_core(event_json);
	if(event == NULL)
		return -1;
	json_t *jsep = json_from_core(jsep_json);
	int result = gateway->push_event(h, &janus_audioroom_plugin, transaction, event, jsep);
	json_decref(event);
	if(jsep)
		json_decref(jsep);
	return result;
}

static void host_relay_rtp(void *handle, const uint8_t *packet, size_t length) {
	janus_plugin_session *h = (janus_plugin_session *)handle;
	if(!handle_usable(h) || packet == NULL || length == 0 || length > 1500)
		return;
	/* Janus may rewrite the header in place: give it a copy of its own */
	char buffer[1500];
	memcpy(buffer, packet, length);
	janus_plugin_rtp rtp = { .mindex = -1, .video = FALSE, .buffer = buffer, .length = (uint16_t)length };
	janus_plugin_rtp_extensions_reset(&rtp.extensions);
	gateway->relay_rtp(h, &rtp);
}

static void host_close_pc(void *handle) {
	janus_plugin_session *h = (janus_plugin_session *)handle;
	if(handle_usable(h))
		gateway->close_pc(h);
}

static void host_notify_event(void *handle, const char *event_json) {
	if(gateway == NULL)
		return;
	json_t *event = json_from_core(event_json);
	if(event != NULL)
		gateway->notify_event(&janus_audioroom_plugin, (janus_plugin_session *)handle, event);
}

static bool host_events_is_enabled(void) {
	return gateway != NULL && gateway->events_is_enabled();
}

static void host_handle_ref(void *handle) {
	janus_refcount_increase(&((janus_plugin_session *)handle)->ref);
}

static void host_handle_unref(void *handle) {
	janus_refcount_decrease(&((janus_plugin_session *)handle)->ref);
}

/* ---- Permanent rooms: `room-*` sections of our configuration file ----
 *
 * The parsed configuration is kept open, as AudioBridge keeps its own, so that a permanent
 * room's section can be replaced or removed and the file saved through Janus's config API. The
 * core decides what a section holds; the file is only written on request threads. */
static janus_config *rooms_config = NULL;
static char *rooms_config_folder = NULL;
/* FALSE when a configuration file exists but could not be parsed: saving would replace it. */
static gboolean rooms_config_writable = FALSE;
static janus_mutex rooms_config_mutex = JANUS_MUTEX_INITIALIZER;

static int janus_audioroom_save_config(void) {
	/* janus_config_save returns 0 on success, a negative number otherwise (and logs) */
	if(janus_config_save(rooms_config, rooms_config_folder, AUDIOROOM_PACKAGE) != 0) {
		JANUS_LOG(LOG_ERR, "[audioroom] Could not save the configuration file in %s\n", rooms_config_folder);
		return -1;
	}
	return 0;
}

static int host_save_room(const char *section, const char *items_json) {
	json_t *items = json_from_core(items_json);
	if(section == NULL || items == NULL || !json_is_object(items)) {
		if(items)
			json_decref(items);
		return -1;
	}
	int result = -1;
	janus_mutex_lock(&rooms_config_mutex);
	if(rooms_config == NULL || !rooms_config_writable) {
		JANUS_LOG(LOG_ERR, "[audioroom] Not saving room section %s: the configuration file could not be parsed at start-up, and saving would replace it\n", section);
	} else {
		janus_config_remove(rooms_config, NULL, section);
		janus_config_category *category = janus_config_get_create(rooms_config, NULL, janus_config_type_category, section);
		const char *key;
		json_t *value;
		json_object_foreach(items, key, value) {
			if(json_is_string(value)) {
				janus_config_add(rooms_config, category, janus_config_item_create(key, json_string_value(value)));
			} else if(json_is_array(value)) {
				janus_config_array *array = janus_config_array_create(key);
				janus_config_add(rooms_config, category, array);
				size_t i;
				json_t *element;
				json_array_foreach(value, i, element) {
					if(json_is_string(element))
						janus_config_add(rooms_config, array, janus_config_item_create(NULL, json_string_value(element)));
				}
			}
		}
		result = janus_audioroom_save_config();
	}
	janus_mutex_unlock(&rooms_config_mutex);
	json_decref(items);
	return result;
}

static int host_remove_room(const char *section) {
	if(section == NULL)
		return -1;
	int result = -1;
	janus_mutex_lock(&rooms_config_mutex);
	if(rooms_config == NULL || !rooms_config_writable) {
		JANUS_LOG(LOG_ERR, "[audioroom] Not removing room section %s: the configuration file could not be parsed at start-up, and saving would replace it\n", section);
	} else {
		janus_config_remove(rooms_config, NULL, section);
		result = janus_audioroom_save_config();
	}
	janus_mutex_unlock(&rooms_config_mutex);
	return result;
}

/* A section as the core reads it: items as strings, arrays as arrays of strings. */
static json_t *janus_audioroom_section_json(janus_config_category *category) {
	json_t *items = json_object();
	GList *entry = category->list;
	for(; entry != NULL; entry = entry->next) {
		janus_config_container *c = (janus_config_container *)entry->data;
		if(c == NULL || c->name == NULL)
			continue;
		if(c->type == janus_config_type_item && c->value != NULL) {
			json_object_set_new(items, c->name, json_string(c->value));
		} else if(c->type == janus_config_type_array) {
			json_t *array = json_array();
			GList *element = c->list;
			for(; element != NULL; element = element->next) {
				janus_config_container *e = (janus_config_container *)element->data;
				if(e != NULL && e->type == janus_config_type_item && e->value != NULL)
					json_array_append_new(array, json_string(e->value));
			}
			json_object_set_new(items, c->name, array);
		}
	}
	return items;
}

/* Hands every section but `general` to the core, which makes the rooms (and logs the rest). */
static void janus_audioroom_load_rooms(void) {
	janus_mutex_lock(&rooms_config_mutex);
	GList *categories = rooms_config ? janus_config_get_categories(rooms_config, NULL) : NULL;
	GList *c = categories;
	for(; c != NULL; c = c->next) {
		janus_config_category *category = (janus_config_category *)c->data;
		if(category == NULL || category->name == NULL || !strcasecmp(category->name, "general"))
			continue;
		json_t *items = janus_audioroom_section_json(category);
		char *text = json_dumps(items, JSON_COMPACT);
		json_decref(items);
		audioroom_plugin_load_room(category->name, text);
		free(text);
	}
	g_list_free(categories);
	janus_mutex_unlock(&rooms_config_mutex);
}

static void janus_audioroom_forget_rooms_config(void) {
	janus_mutex_lock(&rooms_config_mutex);
	janus_config_destroy(rooms_config);
	rooms_config = NULL;
	g_free(rooms_config_folder);
	rooms_config_folder = NULL;
	rooms_config_writable = FALSE;
	janus_mutex_unlock(&rooms_config_mutex);
}

static const AudioroomHostCallbacks host_callbacks = {
	.log = host_log,
	.push_event = host_push_event,
	.relay_rtp = host_relay_rtp,
	.close_pc = host_close_pc,
	.notify_event = host_notify_event,
	.events_is_enabled = host_events_is_enabled,
	.handle_ref = host_handle_ref,
	.handle_unref = host_handle_unref,
	.save_room = host_save_room,
	.remove_room = host_remove_room,
};

/* ---- Configuration ---- */

/* Reads <config_path>/<package>.jcfg, or the legacy .cfg when no .jcfg exists, and hands every
 * item of section "general" to the core, which validates and logs. The parsed file is kept for
 * permanent rooms; with no file at all, an empty .jcfg is kept, written at the first save. */
static AudioroomConfig *janus_audioroom_read_config(const char *config_path) {
	AudioroomConfig *settings = audioroom_config_new();
	if(settings == NULL)
		return NULL;
	char filename[1024];
	g_snprintf(filename, sizeof(filename), "%s/%s.jcfg", config_path, AUDIOROOM_PACKAGE);
	gboolean jcfg_exists = g_file_test(filename, G_FILE_TEST_EXISTS);
	janus_config *config = NULL;
	if(jcfg_exists) {
		config = janus_config_parse(filename);
		if(config == NULL)
			JANUS_LOG(LOG_ERR, "[audioroom] Could not parse %s; using the defaults\n", filename);
	} else {
		g_snprintf(filename, sizeof(filename), "%s/%s.cfg", config_path, AUDIOROOM_PACKAGE);
		if(g_file_test(filename, G_FILE_TEST_EXISTS)) {
			config = janus_config_parse(filename);
			if(config == NULL)
				JANUS_LOG(LOG_ERR, "[audioroom] Could not parse %s; using the defaults\n", filename);
		} else {
			JANUS_LOG(LOG_WARN, "[audioroom] No %s.jcfg (or .cfg) in %s; using the defaults\n", AUDIOROOM_PACKAGE, config_path);
		}
	}
	janus_mutex_lock(&rooms_config_mutex);
	rooms_config_folder = g_strdup(config_path);
	if(config == NULL && !g_file_test(filename, G_FILE_TEST_EXISTS)) {
		char name[256];
		g_snprintf(name, sizeof(name), "%s.jcfg", AUDIOROOM_PACKAGE);
		rooms_config = janus_config_create(name);
		rooms_config_writable = TRUE;
	}
	janus_mutex_unlock(&rooms_config_mutex);
	if(config == NULL)
		return settings;
	JANUS_LOG(LOG_INFO, "[audioroom] Configuration: %s\n", filename);
	janus_config_print(config);
	janus_config_category *general = janus_config_get(config, NULL, janus_config_type_category, "general");
	if(general != NULL) {
		GList *item = general->list;
		for(; item != NULL; item = item->next) {
			janus_config_item *entry = (janus_config_item *)item->data;
			if(entry == NULL || entry->type != janus_config_type_item || entry->name == NULL || entry->value == NULL)
				continue;
			audioroom_config_set(settings, entry->name, entry->value);
		}
	}
	janus_mutex_lock(&rooms_config_mutex);
	rooms_config = config;
	rooms_config_writable = TRUE;
	janus_mutex_unlock(&rooms_config_mutex);
	return settings;
}

/* ---- SDP ---- */

/* What the Rust core needs to know of a request's JSEP. `*sdp_out` keeps the parsed offer for
 * the answer; `error` backs the reason string. */
static AudioroomOffer janus_audioroom_read_jsep(json_t *jsep, janus_sdp **sdp_out, char *error, size_t error_len) {
	AudioroomOffer offer = { .kind = AUDIOROOM_JSEP_KIND_NONE, .opus_payload_type = -1, .pcmu_payload_type = -1,
		.pcma_payload_type = -1, .audio_level_ext_id = -1, .fec = false, .error = NULL };
	*sdp_out = NULL;
	if(jsep == NULL)
		return offer;
	offer.kind = AUDIOROOM_JSEP_KIND_INVALID;
	offer.error = error;
	const char *type = json_string_value(json_object_get(jsep, "type"));
	const char *sdp = json_string_value(json_object_get(jsep, "sdp"));
	if(type == NULL || sdp == NULL) {
		g_snprintf(error, error_len, "Invalid JSEP (type and sdp should be strings)");
		return offer;
	}
	if(strcasecmp(type, "offer")) {
		g_snprintf(error, error_len, "Only SDP offers are accepted (got %s)", type);
		return offer;
	}
	if(json_is_true(json_object_get(jsep, "e2ee"))) {
		g_snprintf(error, error_len, "End-to-end encrypted media cannot be mixed");
		return offer;
	}
	char parse_error[512] = "";
	janus_sdp *parsed = janus_sdp_parse(sdp, parse_error, sizeof(parse_error));
	if(parsed == NULL) {
		g_snprintf(error, error_len, "Error parsing SDP: %s", parse_error);
		return offer;
	}
	janus_sdp_mline *audio = janus_sdp_mline_find(parsed, JANUS_SDP_AUDIO);
	if(audio == NULL || audio->port == 0) {
		janus_sdp_destroy(parsed);
		g_snprintf(error, error_len, "The SDP offer has no audio");
		return offer;
	}
	offer.kind = AUDIOROOM_JSEP_KIND_OFFER;
	offer.error = NULL;
	offer.opus_payload_type = janus_sdp_get_codec_pt(parsed, audio->index, "opus");
	offer.pcmu_payload_type = janus_sdp_get_codec_pt(parsed, audio->index, "pcmu");
	offer.pcma_payload_type = janus_sdp_get_codec_pt(parsed, audio->index, "pcma");
	char fmtp_prefix[16];
	g_snprintf(fmtp_prefix, sizeof(fmtp_prefix), "%d ", offer.opus_payload_type);
	GList *attribute = audio->attributes;
	for(; attribute != NULL; attribute = attribute->next) {
		janus_sdp_attribute *a = (janus_sdp_attribute *)attribute->data;
		if(a == NULL || a->name == NULL || a->value == NULL)
			continue;
		if(!strcasecmp(a->name, "extmap") && strstr(a->value, JANUS_RTP_EXTMAP_AUDIO_LEVEL))
			offer.audio_level_ext_id = atoi(a->value);
		else if(!strcasecmp(a->name, "fmtp") && g_str_has_prefix(a->value, fmtp_prefix) && strstr(a->value, "useinbandfec=1"))
			offer.fec = true;
	}
	*sdp_out = parsed;
	return offer;
}

/* Answers the first audio m-line with the one codec the core chose (Opus, PCMU or PCMA); video,
 * data and any other m-line are rejected. Returns the JSEP to attach, or NULL. */
static json_t *janus_audioroom_answer(janus_audioroom_session *session, janus_sdp *offer, gboolean update, const AudioroomAnswer *params) {
	janus_sdp *answer = janus_sdp_generate_answer(offer);
	if(answer == NULL)
		return NULL;
	const char *codec = params->codec == AUDIOROOM_CODEC_PCMU ? "pcmu" :
		params->codec == AUDIOROOM_CODEC_PCMA ? "pcma" : "opus";
	gboolean answered = FALSE;
	GList *item = offer->m_lines;
	for(; item != NULL; item = item->next) {
		janus_sdp_mline *m = (janus_sdp_mline *)item->data;
		if(m->type != JANUS_SDP_AUDIO || answered || m->port == 0)
			continue;
		answered = TRUE;
		if(params->audio_level_ext_id > 0) {
			janus_sdp_generate_answer_mline(offer, answer, m,
				JANUS_SDP_OA_MLINE, JANUS_SDP_AUDIO,
				JANUS_SDP_OA_CODEC, codec,
				JANUS_SDP_OA_DIRECTION, JANUS_SDP_SENDRECV,
				JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
				JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_AUDIO_LEVEL,
				JANUS_SDP_OA_DONE);
		} else {
			janus_sdp_generate_answer_mline(offer, answer, m,
				JANUS_SDP_OA_MLINE, JANUS_SDP_AUDIO,
				JANUS_SDP_OA_CODEC, codec,
				JANUS_SDP_OA_DIRECTION, JANUS_SDP_SENDRECV,
				JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
				JANUS_SDP_OA_DONE);
		}
		janus_sdp_mline *answered_line = janus_sdp_mline_find(answer, JANUS_SDP_AUDIO);
		if(answered_line != NULL && params->codec == AUDIOROOM_CODEC_OPUS) {
			janus_sdp_attribute *fmtp = janus_sdp_attribute_create("fmtp",
				"%d maxplaybackrate=%d;stereo=0;sprop-stereo=0;useinbandfec=%d",
				params->payload_type, params->sampling_rate, params->fec ? 1 : 0);
			janus_sdp_attribute_add_to_mline(answered_line, fmtp);
		}
	}
	g_free(answer->s_name);
	answer->s_name = g_strdup("Audioroom");
	if(!update || session->sdp_sessid == 0) {
		session->sdp_sessid = janus_get_real_time();
		session->sdp_version = 1;
	} else {
		session->sdp_version++;
	}
	answer->o_sessid = session->sdp_sessid;
	answer->o_version = session->sdp_version;
	char *text = janus_sdp_write(answer);
	janus_sdp_destroy(answer);
	if(text == NULL)
		return NULL;
	json_t *jsep = json_pack("{ssss}", "type", "answer", "sdp", text);
	g_free(text);
	return jsep;
}

/* ---- Plugin lifecycle ---- */

static void *janus_audioroom_handler(void *data);

static int janus_audioroom_init(janus_callbacks *callback, const char *config_path) {
	if(g_atomic_int_get(&stopping))
		return -1;
	if(callback == NULL || config_path == NULL)
		return -1;
	gateway = callback;
	AudioroomConfig *settings = janus_audioroom_read_config(config_path);
	if(settings == NULL)
		return -1;
	AudioroomResult started = audioroom_plugin_init(settings, &host_callbacks);
	audioroom_config_free(settings);
	if(started != AUDIOROOM_RESULT_OK) {
		JANUS_LOG(LOG_FATAL, "[audioroom] Initialization failed (see above)\n");
		janus_audioroom_forget_rooms_config();
		gateway = NULL;
		return -1;
	}
	janus_audioroom_load_rooms();
	sessions = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)janus_audioroom_session_unref_on_remove);
	messages = g_async_queue_new_full((GDestroyNotify)janus_audioroom_message_free);
	g_atomic_int_set(&initialized, 1);
	GError *error = NULL;
	handler_thread = g_thread_try_new("audioroom handler", janus_audioroom_handler, NULL, &error);
	if(error != NULL) {
		g_atomic_int_set(&initialized, 0);
		JANUS_LOG(LOG_FATAL, "[audioroom] Cannot start the handler thread: %s\n", error->message ? error->message : "??");
		g_error_free(error);
		audioroom_plugin_destroy();
		janus_audioroom_forget_rooms_config();
		return -1;
	}
	JANUS_LOG(LOG_INFO, "%s initialized!\n", AUDIOROOM_NAME);
	return 0;
}

static void janus_audioroom_destroy(void) {
	if(!g_atomic_int_get(&initialized))
		return;
	g_atomic_int_set(&stopping, 1);
	g_async_queue_push(messages, &exit_message);
	if(handler_thread != NULL) {
		g_thread_join(handler_thread);
		handler_thread = NULL;
	}
	/* Sessions Janus did not destroy are freed outside the lock, for the reason given in
	 * destroy_session. */
	janus_mutex_lock(&sessions_mutex);
	GHashTable *remaining = sessions;
	sessions = NULL;
	janus_mutex_unlock(&sessions_mutex);
	g_hash_table_destroy(remaining);
	g_async_queue_unref(messages);
	messages = NULL;
	/* Finishes every recording and writes its job file before returning */
	audioroom_plugin_destroy();
	janus_audioroom_forget_rooms_config();
	g_atomic_int_set(&initialized, 0);
	g_atomic_int_set(&stopping, 0);
	gateway = NULL;
	JANUS_LOG(LOG_INFO, "%s destroyed!\n", AUDIOROOM_NAME);
}

static int janus_audioroom_get_api_compatibility(void) {
	return JANUS_PLUGIN_API_VERSION;
}

static int janus_audioroom_get_version(void) {
	return AUDIOROOM_VERSION;
}

static const char *janus_audioroom_get_version_string(void) {
	return AUDIOROOM_VERSION_STRING;
}

static const char *janus_audioroom_get_description(void) {
	return AUDIOROOM_DESCRIPTION;
}

static const char *janus_audioroom_get_name(void) {
	return AUDIOROOM_NAME;
}

static const char *janus_audioroom_get_author(void) {
	return AUDIOROOM_AUTHOR;
}

static const char *janus_audioroom_get_package(void) {
	return AUDIOROOM_PACKAGE;
}

/* ---- Sessions ---- */

static void janus_audioroom_create_session(janus_plugin_session *handle, int *error) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized)) {
		*error = -1;
		return;
	}
	AudioroomSession *core = audioroom_session_new(handle);
	if(core == NULL) {
		*error = -2;
		return;
	}
	janus_audioroom_session *session = g_malloc0(sizeof(janus_audioroom_session));
	session->handle = handle;
	session->core = core;
	g_atomic_int_set(&session->hangingup, 0);
	g_atomic_int_set(&session->destroyed, 0);
	janus_refcount_init(&session->ref, janus_audioroom_session_free);
	handle->plugin_handle = session;
	janus_mutex_lock(&sessions_mutex);
	g_hash_table_insert(sessions, handle, session);
	janus_mutex_unlock(&sessions_mutex);
}

static void janus_audioroom_destroy_session(janus_plugin_session *handle, int *error) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized)) {
		*error = -1;
		return;
	}
	janus_mutex_lock(&sessions_mutex);
	janus_audioroom_session *session = janus_audioroom_lookup_session(handle);
	if(session == NULL) {
		janus_mutex_unlock(&sessions_mutex);
		JANUS_LOG(LOG_ERR, "[audioroom] No session associated with this handle\n");
		*error = -2;
		return;
	}
	/* Out of the table under the lock, but destroyed after releasing it: the participant's
	 * leaving pushes events to other handles, and Janus takes its own locks in push_event
	 * (AudioBridge's deadlocks #2956 and #3570 held a plugin lock across that). Our reference
	 * keeps the session alive meanwhile. */
	janus_refcount_increase(&session->ref);
	g_hash_table_remove(sessions, handle);
	janus_mutex_unlock(&sessions_mutex);
	/* The participant leaves; after this the core starts no callback with this handle */
	audioroom_session_destroy(session->core);
	janus_refcount_decrease(&session->ref);
}

static json_t *janus_audioroom_query_session(janus_plugin_session *handle) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return NULL;
	janus_audioroom_session *session = janus_audioroom_session_get(handle);
	if(session == NULL)
		return NULL;
	char *text = audioroom_session_query(session->core);
	json_t *info = json_from_core(text);
	audioroom_string_free(text);
	if(info != NULL && json_is_object(info)) {
		json_object_set_new(info, "hangingup", json_integer(g_atomic_int_get(&session->hangingup)));
		json_object_set_new(info, "destroyed", json_integer(g_atomic_int_get(&session->destroyed)));
	}
	janus_refcount_decrease(&session->ref);
	return info;
}

/* ---- Requests ---- */

static char *json_to_text(json_t *value) {
	if(value == NULL)
		return NULL;
	return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}

static struct janus_plugin_result *janus_audioroom_handle_message(janus_plugin_session *handle, char *transaction, json_t *message, json_t *jsep) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized)) {
		g_free(transaction);
		if(message)
			json_decref(message);
		if(jsep)
			json_decref(jsep);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR, g_atomic_int_get(&stopping) ? "Shutting down" : "Plugin not initialized", NULL);
	}
	janus_audioroom_session *session = janus_audioroom_session_get(handle);
	if(session == NULL) {
		g_free(transaction);
		if(message)
			json_decref(message);
		if(jsep)
			json_decref(jsep);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR, "No session associated with this handle", NULL);
	}
	char *text = json_to_text(message);
	char *reply = NULL;
	AudioroomDispatch dispatch = audioroom_session_message(session->core, text, &reply);
	free(text);
	if(dispatch == AUDIOROOM_DISPATCH_QUEUE) {
		/* The session reference we hold goes with the message */
		janus_audioroom_message *msg = g_malloc0(sizeof(janus_audioroom_message));
		msg->handle = handle;
		msg->transaction = transaction;
		msg->message = message;
		msg->jsep = jsep;
		g_async_queue_push(messages, msg);
		return janus_plugin_result_new(JANUS_PLUGIN_OK_WAIT, NULL, NULL);
	}
	json_t *response = json_from_core(reply);
	audioroom_string_free(reply);
	janus_refcount_decrease(&session->ref);
	g_free(transaction);
	if(message)
		json_decref(message);
	if(jsep)
		json_decref(jsep);
	if(response == NULL)
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR, "Internal error", NULL);
	return janus_plugin_result_new(JANUS_PLUGIN_OK, NULL, response);
}

static json_t *janus_audioroom_handle_admin_message(json_t *message) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return NULL;
	char *text = json_to_text(message);
	char *reply = NULL;
	audioroom_admin_message(text, &reply);
	free(text);
	json_t *response = json_from_core(reply);
	audioroom_string_free(reply);
	return response;
}

/* The handler thread: queued asynchronous requests, one at a time, in arrival order. */
static void *janus_audioroom_handler(void *data) {
	(void)data;
	JANUS_LOG(LOG_VERB, "[audioroom] Handler thread started\n");
	while(g_atomic_int_get(&initialized) && !g_atomic_int_get(&stopping)) {
		janus_audioroom_message *msg = g_async_queue_pop(messages);
		if(msg == &exit_message)
			break;
		if(msg->handle == NULL) {
			janus_audioroom_message_free(msg);
			continue;
		}
		janus_mutex_lock(&sessions_mutex);
		janus_audioroom_session *session = janus_audioroom_lookup_session(msg->handle);
		gboolean usable = session != NULL && !g_atomic_int_get(&session->destroyed);
		janus_mutex_unlock(&sessions_mutex);
		if(!usable) {
			janus_audioroom_message_free(msg);
			continue;
		}
		char error[600] = "";
		janus_sdp *offer_sdp = NULL;
		AudioroomOffer offer = janus_audioroom_read_jsep(msg->jsep, &offer_sdp, error, sizeof(error));
		char *text = json_to_text(msg->message);
		char *event_text = NULL;
		AudioroomAnswer answer_params;
		bool wants_answer = audioroom_session_async_message(session->core, text, &offer, &event_text, &answer_params);
		free(text);
		json_t *event = json_from_core(event_text);
		audioroom_string_free(event_text);
		json_t *jsep = NULL;
		if(wants_answer && offer_sdp != NULL) {
			gboolean update = json_is_true(json_object_get(msg->jsep, "update"));
			jsep = janus_audioroom_answer(session, offer_sdp, update, &answer_params);
		}
		if(offer_sdp != NULL)
			janus_sdp_destroy(offer_sdp);
		if(event != NULL && handle_usable(msg->handle)) {
			g_atomic_int_set(&session->hangingup, 0);
			gateway->push_event(msg->handle, &janus_audioroom_plugin, msg->transaction, event, jsep);
		}
		if(event)
			json_decref(event);
		if(jsep)
			json_decref(jsep);
		janus_audioroom_message_free(msg);
	}
	JANUS_LOG(LOG_VERB, "[audioroom] Handler thread stopped\n");
	return NULL;
}

/* ---- Media ---- */

static void janus_audioroom_setup_media(janus_plugin_session *handle) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return;
	janus_audioroom_session *session = janus_audioroom_session_get(handle);
	if(session == NULL)
		return;
	g_atomic_int_set(&session->hangingup, 0);
	audioroom_session_setup_media(session->core);
	janus_refcount_decrease(&session->ref);
}

static void janus_audioroom_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet) {
	if(handle == NULL || packet == NULL || g_atomic_int_get(&handle->stopped) ||
			g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return;
	janus_audioroom_session *session = (janus_audioroom_session *)handle->plugin_handle;
	if(session == NULL || g_atomic_int_get(&session->destroyed) || packet->video)
		return;
	audioroom_session_incoming_rtp(session->core, (const uint8_t *)packet->buffer, packet->length, packet->extensions.audio_level);
}

static void janus_audioroom_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet) {
	/* Janus answers RTCP itself; the mix needs nothing from it */
	(void)handle;
	(void)packet;
}

static void janus_audioroom_hangup_media(janus_plugin_session *handle) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return;
	janus_audioroom_session *session = janus_audioroom_session_get(handle);
	if(session == NULL)
		return;
	if(g_atomic_int_compare_and_exchange(&session->hangingup, 0, 1)) {
		/* Like a leave: the room hears it */
		audioroom_session_hangup_media(session->core);
		g_atomic_int_set(&session->hangingup, 0);
	}
	janus_refcount_decrease(&session->ref);
}
