/* SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The C side of the ABI: drives include/audioroom.h the way c/audioroom.c does, with fake Janus
 * callbacks, including NULL and invalid arguments, and checks what comes back. Handle reference
 * counts must balance once the plugin is destroyed. Prints "N passed, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audioroom.h"

static int passed = 0, failed = 0;

#define CHECK(cond, what) do { \
	if(cond) { passed++; } \
	else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); } \
} while(0)

/* A stand-in for janus_plugin_session: just a reference count. */
typedef struct fake_handle {
	int refs;
	int events;
	int rtp_packets;
	char last_event[4096];
} fake_handle;

static int log_lines = 0;

static void fake_log(AudioroomLogLevel level, const char *line) {
	(void)level;
	if(line != NULL)
		log_lines++;
}

static int fake_push_event(void *handle, const char *transaction, const char *event_json, const char *jsep_json) {
	(void)transaction;
	(void)jsep_json;
	fake_handle *h = handle;
	h->events++;
	snprintf(h->last_event, sizeof(h->last_event), "%s", event_json ? event_json : "");
	return 0;
}

static void fake_relay_rtp(void *handle, const uint8_t *packet, size_t length) {
	(void)packet;
	(void)length;
	((fake_handle *)handle)->rtp_packets++;
}

static void fake_close_pc(void *handle) {
	(void)handle;
}

static void fake_notify_event(void *handle, const char *event_json) {
	(void)handle;
	(void)event_json;
}

static bool fake_events_is_enabled(void) {
	return false;
}

static void fake_ref(void *handle) {
	((fake_handle *)handle)->refs++;
}

static void fake_unref(void *handle) {
	((fake_handle *)handle)->refs--;
}

/* The configuration file of permanent rooms, as the glue would write it. */
static int saves = 0, removes = 0;
static char last_section[1024], last_items[4096];

static int fake_save_room(const char *section, const char *items_json) {
	saves++;
	snprintf(last_section, sizeof(last_section), "%s", section ? section : "");
	snprintf(last_items, sizeof(last_items), "%s", items_json ? items_json : "");
	return 0;
}

static int fake_remove_room(const char *section) {
	removes++;
	snprintf(last_section, sizeof(last_section), "%s", section ? section : "");
	return 0;
}

static const AudioroomHostCallbacks callbacks = {
	.log = fake_log,
	.push_event = fake_push_event,
	.relay_rtp = fake_relay_rtp,
	.close_pc = fake_close_pc,
	.notify_event = fake_notify_event,
	.events_is_enabled = fake_events_is_enabled,
	.handle_ref = fake_ref,
	.handle_unref = fake_unref,
	.save_room = fake_save_room,
	.remove_room = fake_remove_room,
};

/* Sends a synchronous request and returns the reply (caller frees with audioroom_string_free). */
static char *request(AudioroomSession *session, const char *json) {
	char *reply = NULL;
	AudioroomDispatch d = audioroom_session_message(session, json, &reply);
	CHECK(d == AUDIOROOM_DISPATCH_REPLY, "synchronous request answered at once");
	CHECK(reply != NULL, "reply present");
	return reply;
}

static void expect_reply(AudioroomSession *session, const char *json, const char *fragment) {
	char *reply = request(session, json);
	if(reply == NULL || strstr(reply, fragment) == NULL) {
		failed++;
		fprintf(stderr, "FAIL: %s\n  got %s\n  expected to contain %s\n", json, reply ? reply : "(null)", fragment);
	} else {
		passed++;
	}
	audioroom_string_free(reply);
}

int main(void) {
	char folder[] = "/tmp/audioroom-abi-XXXXXX";
	CHECK(mkdtemp(folder) != NULL, "temporary folder");
	char archive[300], jobs[300];
	snprintf(archive, sizeof(archive), "%s/recordings", folder);
	snprintf(jobs, sizeof(jobs), "%s/jobs", folder);

	/* Configuration, as janus_audioroom_read_config hands it over. */
	CHECK(audioroom_config_set(NULL, "a", "b") == AUDIOROOM_RESULT_INVALID_ARGUMENT, "NULL config");
	AudioroomConfig *config = audioroom_config_new();
	CHECK(config != NULL, "config_new");
	CHECK(audioroom_config_set(config, "archive_path", archive) == AUDIOROOM_RESULT_OK, "archive_path");
	CHECK(audioroom_config_set(config, "job_path", jobs) == AUDIOROOM_RESULT_OK, "job_path");
	CHECK(audioroom_config_set(config, "mixer_prebuffering", "many") == AUDIOROOM_RESULT_BAD_VALUE, "bad value");
	CHECK(audioroom_config_set(config, "no_such_key", "1") == AUDIOROOM_RESULT_UNKNOWN_KEY, "unknown key");
	CHECK(audioroom_config_set(config, NULL, "1") == AUDIOROOM_RESULT_INVALID_ARGUMENT, "NULL key");
	CHECK(audioroom_config_set(config, "job_path", NULL) == AUDIOROOM_RESULT_INVALID_ARGUMENT, "NULL value");

	/* Nothing works before init. */
	fake_handle early = { 0 };
	CHECK(audioroom_session_new(&early) == NULL, "no session before init");
	char *reply = NULL;
	CHECK(audioroom_admin_message("{\"request\":\"list\"}", &reply) == AUDIOROOM_RESULT_OK, "admin before init");
	CHECK(reply != NULL && strstr(reply, "\"error_code\":499") != NULL, "admin before init is an error");
	audioroom_string_free(reply);

	CHECK(audioroom_plugin_init(NULL, &callbacks) == AUDIOROOM_RESULT_INVALID_ARGUMENT, "init without config");
	CHECK(audioroom_plugin_init(config, NULL) == AUDIOROOM_RESULT_INVALID_ARGUMENT, "init without callbacks");
	CHECK(audioroom_plugin_init(config, &callbacks) == AUDIOROOM_RESULT_OK, "init");
	CHECK(audioroom_plugin_init(config, &callbacks) == AUDIOROOM_RESULT_INIT_FAILED, "init twice");
	audioroom_config_free(config);
	audioroom_config_free(NULL);
	CHECK(access(archive, W_OK) == 0 && access(jobs, W_OK) == 0, "folders created");

	fake_handle a = { 0 }, b = { 0 };
	AudioroomSession *sa = audioroom_session_new(&a);
	AudioroomSession *sb = audioroom_session_new(&b);
	CHECK(sa != NULL && sb != NULL, "sessions");
	/* Janus calls create_session before it initialises the handle's reference count, so no
	 * reference may be taken there (it would be wiped, and its release free the handle early). */
	CHECK(a.refs == 0 && b.refs == 0, "creating a session takes no reference on its handle");
	CHECK(audioroom_session_new(NULL) == NULL, "NULL handle");

	/* Synchronous requests and their errors. */
	expect_reply(sa, "{\"request\":\"create\",\"id\":\"caf\\u00e9 \\u2615\",\"sampling\":16000}", "\"audioroom\":\"created\"");
	expect_reply(sa, "{\"request\":\"create\",\"id\":\"caf\\u00e9 \\u2615\"}", "\"error_code\":486");
	expect_reply(sa, "{\"request\":\"exists\",\"id\":\"caf\\u00e9 \\u2615\"}", "\"exists\":true");
	expect_reply(sa, "{\"request\":\"exists\",\"id\":5}", "\"error\":\"Invalid element (id should be a string)\"");
	expect_reply(sa, "{\"request\":\"list\"}", "\"sampling_rate\":16000");
	expect_reply(sa, "{\"request\":\"nope\"}", "\"error_code\":482");
	expect_reply(sa, "{\"id\":\"x\"}", "\"error\":\"Missing element (request)\"");
	expect_reply(sa, "[1,2]", "\"error_code\":481");
	expect_reply(sa, "{not json", "\"error_code\":481");
	expect_reply(sa, "", "\"error_code\":480");
	expect_reply(sa, "{\"request\":\"resetdecoder\"}", "\"error_code\":487");
	reply = NULL;
	CHECK(audioroom_session_message(sa, NULL, &reply) == AUDIOROOM_DISPATCH_REPLY, "NULL message");
	CHECK(reply != NULL && strstr(reply, "480") != NULL, "NULL message is 480");
	audioroom_string_free(reply);
	reply = NULL;
	CHECK(audioroom_session_message(NULL, "{\"request\":\"list\"}", &reply) == AUDIOROOM_DISPATCH_REPLY, "NULL session");
	CHECK(reply != NULL && strstr(reply, "error_code") != NULL, "NULL session is an error");
	audioroom_string_free(reply);
	CHECK(audioroom_session_message(sa, "{}", NULL) == AUDIOROOM_DISPATCH_REPLY, "NULL out pointer");

	/* Permanent rooms: sections handed over at init, sections saved and removed. */
	CHECK(audioroom_plugin_load_room(NULL, "{}") == AUDIOROOM_RESULT_INVALID_ARGUMENT, "load NULL section");
	CHECK(audioroom_plugin_load_room("room-lobby", "{\"description\":\"Lobby\",\"sampling_rate\":\"16000\",\"allowed\":[\"t1\"]}") == AUDIOROOM_RESULT_OK, "load a room");
	CHECK(audioroom_plugin_load_room("room-lobby", "{}") == AUDIOROOM_RESULT_BAD_VALUE, "a room loaded twice");
	CHECK(audioroom_plugin_load_room("rtp-forwarders", "{}") == AUDIOROOM_RESULT_BAD_VALUE, "not a room section");
	CHECK(audioroom_plugin_load_room("room-x", "{\"sampling_rate\":\"44100\"}") == AUDIOROOM_RESULT_BAD_VALUE, "a bad value");
	expect_reply(sa, "{\"request\":\"exists\",\"id\":\"x\"}", "\"exists\":false");
	expect_reply(sa, "{\"request\":\"list\"}", "{\"description\":\"Lobby\",\"id\":\"lobby\"");
	expect_reply(sa, "{\"request\":\"create\",\"id\":\"Perm\",\"permanent\":true}", "\"permanent\":true");
	CHECK(saves == 1 && !strcmp(last_section, "room-_50erm") && strstr(last_items, "\"sampling_rate\":\"48000\"") != NULL, "create saves the room's section");
	expect_reply(sa, "{\"request\":\"destroy\",\"id\":\"Perm\",\"permanent\":true}", "\"permanent\":true");
	CHECK(removes == 1 && !strcmp(last_section, "room-_50erm"), "destroy removes it");

	/* Asynchronous: join is queued, then answered by the handler. */
	reply = NULL;
	CHECK(audioroom_session_message(sa, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\"}", &reply) == AUDIOROOM_DISPATCH_QUEUE, "join is queued");
	CHECK(reply == NULL, "no reply for queued requests");
	char *event = NULL;
	AudioroomAnswer answer;
	AudioroomOffer offer = { .kind = AUDIOROOM_JSEP_KIND_OFFER, .opus_payload_type = 109, .pcmu_payload_type = 0, .pcma_payload_type = -1, .audio_level_ext_id = 1, .fec = true, .error = NULL };
	bool wants_answer = audioroom_session_async_message(sa, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\",\"userid\":7,\"display\":\"A\"}", &offer, &event, &answer);
	CHECK(wants_answer, "an offer gets an answer");
	CHECK(answer.codec == AUDIOROOM_CODEC_OPUS && answer.payload_type == 109 && answer.audio_level_ext_id == 1 && answer.fec && answer.sampling_rate == 16000, "answer parameters");
	CHECK(event != NULL && strstr(event, "\"audioroom\":\"joined\"") != NULL && strstr(event, "\"userid\":7") != NULL, "joined event");
	audioroom_string_free(event);
	CHECK(a.refs >= 1, "the participant holds its own reference");

	AudioroomOffer bad = { .kind = AUDIOROOM_JSEP_KIND_INVALID, .opus_payload_type = -1, .pcmu_payload_type = -1, .pcma_payload_type = -1, .audio_level_ext_id = -1, .fec = false, .error = "Error parsing SDP: junk" };
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\"}", &bad, &event, &answer);
	CHECK(!wants_answer && event != NULL && strstr(event, "\"error_code\":493") != NULL, "a bad SDP is 493");
	audioroom_string_free(event);
	AudioroomOffer no_audio_codec = { .kind = AUDIOROOM_JSEP_KIND_OFFER, .opus_payload_type = -1, .pcmu_payload_type = -1, .pcma_payload_type = -1, .audio_level_ext_id = -1, .fec = false, .error = NULL };
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\"}", &no_audio_codec, &event, &answer);
	CHECK(!wants_answer && strstr(event, "The SDP offer has no Opus, PCMU or PCMA audio") != NULL, "no codec we speak is 493");
	audioroom_string_free(event);
	AudioroomOffer pcma_only = { .kind = AUDIOROOM_JSEP_KIND_OFFER, .opus_payload_type = -1, .pcmu_payload_type = -1, .pcma_payload_type = 8, .audio_level_ext_id = -1, .fec = true, .error = NULL };
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\",\"codec\":\"pcmu\"}", &pcma_only, &event, &answer);
	CHECK(!wants_answer && strstr(event, "The SDP offer has no PCMU audio") != NULL, "a codec asked for must be offered");
	audioroom_string_free(event);
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\",\"userid\":7}", NULL, &event, &answer);
	CHECK(!wants_answer && strstr(event, "\"error_code\":490") != NULL, "a taken userid is 490");
	audioroom_string_free(event);
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\",\"userid\":8}", NULL, &event, &answer);
	CHECK(!wants_answer && strstr(event, "\"joined\"") != NULL, "B joins without SDP");
	audioroom_string_free(event);
	CHECK(strstr(a.last_event, "\"participants\":[{") != NULL && strstr(a.last_event, "\"userid\":8") != NULL, "A hears that B joined");
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"join\",\"id\":\"caf\\u00e9 \\u2615\"}", NULL, &event, &answer);
	CHECK(strstr(event, "\"error_code\":491") != NULL, "joining twice is 491");
	audioroom_string_free(event);
	CHECK(!audioroom_session_async_message(sb, "{}", NULL, NULL, &answer), "NULL out_event");
	expect_reply(sa, "{\"request\":\"listparticipants\",\"id\":\"caf\\u00e9 \\u2615\"}", "\"display\":\"A\"");

	/* Media callbacks with garbage: no crash. */
	uint8_t junk[40];
	memset(junk, 0xAB, sizeof(junk));
	audioroom_session_incoming_rtp(sa, junk, sizeof(junk), -1);
	audioroom_session_incoming_rtp(sa, NULL, 10, 200);
	audioroom_session_incoming_rtp(NULL, junk, sizeof(junk), 0);
	audioroom_session_setup_media(sa);
	audioroom_session_setup_media(NULL);
	char *info = audioroom_session_query(sa);
	CHECK(info != NULL && strstr(info, "\"setup\":true") != NULL && strstr(info, "\"rejected_packets\":1") != NULL, "query shows setup and rejected packets");
	audioroom_string_free(info);
	CHECK(audioroom_session_query(NULL) == NULL, "query NULL");
	usleep(100 * 1000); /* a few mixer ticks */
	CHECK(a.rtp_packets > 0, "a set-up participant is sent the mix");
	CHECK(b.rtp_packets == 0, "a participant without media is not");

	/* Admin API */
	reply = NULL;
	CHECK(audioroom_admin_message("{\"request\":\"join\",\"id\":\"x\"}", &reply) == AUDIOROOM_RESULT_OK, "admin join");
	CHECK(strstr(reply, "\"error_code\":482") != NULL, "async requests are refused by the Admin API");
	audioroom_string_free(reply);
	CHECK(audioroom_admin_message("{\"request\":\"list\"}", NULL) == AUDIOROOM_RESULT_INVALID_ARGUMENT, "admin NULL out");

	/* Leaving, destroying, freeing. */
	wants_answer = audioroom_session_async_message(sb, "{\"request\":\"leave\"}", NULL, &event, &answer);
	CHECK(strstr(event, "\"audioroom\":\"left\"") != NULL, "leave");
	audioroom_string_free(event);
	audioroom_session_hangup_media(sa);
	expect_reply(sb, "{\"request\":\"listparticipants\",\"id\":\"caf\\u00e9 \\u2615\"}", "\"participants\":[]");
	audioroom_session_destroy(sa);
	CHECK(audioroom_session_is_destroyed(sa), "destroyed");
	audioroom_session_free(sa);
	audioroom_session_destroy(sb);
	audioroom_session_free(sb);
	audioroom_session_free(NULL);
	audioroom_string_free(NULL);
	expect_reply(NULL, "{}", "error_code");

	audioroom_plugin_destroy();
	audioroom_plugin_destroy();
	CHECK(a.refs == 0 && b.refs == 0, "handle references balance");
	CHECK(log_lines > 0, "log lines reach the host");

	/* The room had a participant: its recording and job are on disk after destroy. */
	char command[700];
	snprintf(command, sizeof(command), "ls %s/*.wav >/dev/null 2>&1 && ls %s/*.json >/dev/null 2>&1", archive, jobs);
	CHECK(system(command) == 0, "a WAV and a job file were written on shutdown");
	snprintf(command, sizeof(command), "rm -rf %s", folder);
	if(system(command) != 0)
		fprintf(stderr, "could not remove %s\n", folder);

	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
