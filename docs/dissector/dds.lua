-- dds.lua: a Wireshark dissector for the DDS wire protocol (docs/protocol.md), version 2.
--
-- Use: wireshark -X lua_script:docs/dissector/dds.lua, or copy it to ~/.local/lib/wireshark/plugins/.
-- tshark -X lua_script:docs/dissector/dds.lua -r capture.pcap -O dds
-- Decodes every message type on UDP port 9000 (Preferences > Protocols > DDS to change it).
-- The nonce and the MAC tag are shown, not verified (that needs the device's key).

local dds = Proto("dds", "DDS split-inference protocol")

local types = {
    [1] = "REGISTER", [2] = "REGISTER_REPLY", [3] = "REQUEST", [4] = "RESULT",
    [5] = "PRICE", [6] = "ERROR", [7] = "BUSY",
}
local reasons = {
    [0] = "ok", "truncated", "bad_magic", "bad_version", "bad_type", "bad_flags", "bad_length",
    "bad_fragment", "bad_tensor", "bad_value", "unexpected_type", "unknown_device", "bad_mac",
    "replay", "too_large", "device_slots", "device_memory", "table_full", "memory",
    "alloc_failed", "duplicate", "inconsistent", "overlap_conflict", "timeout", "unknown_model",
    "bad_split", "exec_failed", "shutting_down",
}
local dtypes = { [1] = "float32", [2] = "float16" }

local f = dds.fields
f.magic = ProtoField.uint16("dds.magic", "Magic", base.HEX)
f.version = ProtoField.uint8("dds.version", "Version")
f.type = ProtoField.uint8("dds.type", "Type", base.DEC, types)
f.flags = ProtoField.uint16("dds.flags", "Flags", base.HEX)
f.body_len = ProtoField.uint16("dds.body_len", "Body length")
f.device_id = ProtoField.uint32("dds.device_id", "Device")
f.frag_index = ProtoField.uint16("dds.frag_index", "Fragment index")
f.frag_count = ProtoField.uint16("dds.frag_count", "Fragment count")
f.request_id = ProtoField.uint64("dds.request_id", "Request id")
f.model_hash = ProtoField.uint64("dds.model_hash", "Model hash", base.HEX)
f.value = ProtoField.double("dds.value", "Budget x / price p")
f.payload_len = ProtoField.uint32("dds.payload_len", "Payload length")
f.frag_offset = ProtoField.uint32("dds.frag_offset", "Fragment offset")
f.frag_len = ProtoField.uint16("dds.frag_len", "Fragment length")
f.n_tensors = ProtoField.uint16("dds.n_tensors", "Tensors")
f.value_id = ProtoField.uint16("dds.tensor.value_id", "Value id")
f.dtype = ProtoField.uint8("dds.tensor.dtype", "Dtype", base.DEC, dtypes)
f.ndim = ProtoField.uint8("dds.tensor.ndim", "Rank")
f.dim = ProtoField.uint32("dds.tensor.dim", "Dim")
f.data = ProtoField.bytes("dds.data", "Data")
f.rx_mtu = ProtoField.uint32("dds.rx_mtu", "Receive MTU")
f.price = ProtoField.double("dds.price", "Price p")
f.p0 = ProtoField.double("dds.p0", "Base price p0")
f.max_payload = ProtoField.uint32("dds.max_payload", "Max payload")
f.max_inflight = ProtoField.uint32("dds.max_inflight", "Max in flight")
f.timeout_ms = ProtoField.uint32("dds.timeout_ms", "Timeout (ms)")
f.work_kind = ProtoField.uint16("dds.work_kind", "Work kind", base.DEC,
    { [0] = "per-layer table", [1] = "regression" })
f.n_work = ProtoField.uint16("dds.n_work", "Work entries")
f.work = ProtoField.double("dds.work", "Work")
f.reason = ProtoField.uint16("dds.reason", "Reason", base.DEC, reasons)
f.retry_ms = ProtoField.uint32("dds.retry_ms", "Retry after (ms)")
f.nonce = ProtoField.bytes("dds.nonce", "Nonce (GCM IV)")
f.tag = ProtoField.bytes("dds.tag", "MAC tag (AES-256-GMAC)")

local ef_short = ProtoExpert.new("dds.short", "Datagram shorter than its lengths say",
    expert.group.MALFORMED, expert.severity.ERROR)
dds.experts = { ef_short }

local pref_port = 9000
dds.prefs.port = Pref.uint("UDP port", pref_port, "The node's UDP port")

-- The tensor-message body of REQUEST and RESULT.
local function tensor_body(buf, tree, pinfo)
    if buf:len() < 20 then return end
    tree:add(f.value, buf(0, 8))
    tree:add(f.payload_len, buf(8, 4))
    tree:add(f.frag_offset, buf(12, 4))
    tree:add(f.frag_len, buf(16, 2))
    tree:add(f.n_tensors, buf(18, 2))
    local n, flen = buf(18, 2):uint(), buf(16, 2):uint()
    local off = 20
    for i = 1, n do
        if buf:len() < off + 20 then return end
        local t = tree:add(dds, buf(off, 20), "Tensor " .. (i - 1))
        t:add(f.value_id, buf(off, 2))
        t:add(f.dtype, buf(off + 2, 1))
        t:add(f.ndim, buf(off + 3, 1))
        for d = 0, buf(off + 3, 1):uint() - 1 do
            if d < 4 then t:add(f.dim, buf(off + 4 + 4 * d, 4)) end
        end
        off = off + 20
    end
    if buf:len() >= off + flen and flen > 0 then tree:add(f.data, buf(off, flen)) end
    pinfo.cols.info:append(string.format(" off=%d len=%d/%d", buf(12, 4):uint(), flen,
        buf(8, 4):uint()))
end

local function body(typ, buf, tree, pinfo)
    if typ == 3 or typ == 4 then
        tensor_body(buf, tree, pinfo)
    elseif typ == 1 and buf:len() >= 4 then
        tree:add(f.rx_mtu, buf(0, 4))
    elseif typ == 2 and buf:len() >= 32 then
        tree:add(f.price, buf(0, 8))
        tree:add(f.p0, buf(8, 8))
        tree:add(f.max_payload, buf(16, 4))
        tree:add(f.max_inflight, buf(20, 4))
        tree:add(f.timeout_ms, buf(24, 4))
        tree:add(f.work_kind, buf(28, 2))
        tree:add(f.n_work, buf(30, 2))
        for i = 0, buf(30, 2):uint() - 1 do
            if buf:len() >= 40 + 8 * i then tree:add(f.work, buf(32 + 8 * i, 8)) end
        end
    elseif (typ == 5 or typ == 6 or typ == 7) and buf:len() >= 8 then
        tree:add(f.price, buf(0, 8))
        if typ == 6 and buf:len() >= 10 then
            tree:add(f.reason, buf(8, 2))
            pinfo.cols.info:append(" " .. (reasons[buf(8, 2):uint()] or "?"))
        elseif typ == 7 and buf:len() >= 12 then
            tree:add(f.retry_ms, buf(8, 4))
        end
    end
end

function dds.dissector(buf, pinfo, root)
    if buf:len() < 60 or buf(0, 2):uint() ~= 0x4453 then return 0 end
    pinfo.cols.protocol = "DDS"
    local typ, blen = buf(3, 1):uint(), buf(6, 2):uint()
    local tree = root:add(dds, buf(), "DDS " .. (types[typ] or "type " .. typ))
    tree:add(f.magic, buf(0, 2))
    tree:add(f.version, buf(2, 1))
    tree:add(f.type, buf(3, 1))
    tree:add(f.flags, buf(4, 2))
    tree:add(f.body_len, buf(6, 2))
    tree:add(f.device_id, buf(8, 4))
    tree:add(f.frag_index, buf(12, 2))
    tree:add(f.frag_count, buf(14, 2))
    tree:add(f.request_id, buf(16, 8))
    tree:add(f.model_hash, buf(24, 8))
    pinfo.cols.info:set(string.format("%s dev=%d req=%s frag=%d/%d", types[typ] or "?",
        buf(8, 4):uint(), tostring(buf(16, 8):uint64()), buf(12, 2):uint(), buf(14, 2):uint()))
    if buf:len() < 32 + blen + 28 then
        tree:add_proto_expert_info(ef_short)
        return buf:len()
    end
    if blen > 0 then body(typ, buf(32, blen):tvb(), tree, pinfo) end
    tree:add(f.nonce, buf(32 + blen, 12))
    tree:add(f.tag, buf(32 + blen + 12, 16))
    return buf:len()
end

local registered = nil
function dds.init()
    local udp = DissectorTable.get("udp.port")
    if registered then udp:remove(registered, dds) end
    registered = dds.prefs.port
    udp:add(registered, dds)
end
