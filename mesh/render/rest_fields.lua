-- The gateway's check of REST requests, before the gRPC-JSON transcoder.
--
-- The transcoder follows the proto3 JSON mapping: it drops body fields the request
-- message does not have ({"date": ...} for value_date books today, silently), and
-- its own errors name no field the way the services do. This filter reads the same
-- descriptors (SCHEMA and REJECTED_HEADER, prepended to this file by
-- mesh.render.rest_fields) and answers 400 INVALID_ARGUMENT with a google.rpc.BadRequest naming every
-- unknown or mistyped field, in the body or the query string, in the services' shape.
-- gRPC requests pass untouched, before their body is read.

local MAX_DEPTH = 32
local BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

-- JSON ---------------------------------------------------------------------------------

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_char(cp)
  if cp < 0x80 then
    return string.char(cp)
  elseif cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(
    0xF0 + math.floor(cp / 0x40000),
    0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40,
    0x80 + cp % 0x40
  )
end

-- Parses `text` into tagged values: {t = "object", keys, map}, {t = "array", items},
-- {t = "string"|"number"|"bool", v [, raw]}, {t = "null"}. A syntax error raises
-- {json = "<what> at byte <n>"}.
local function decode(text)
  local pos = 1
  local function fail(what)
    error({ json = what .. " at byte " .. pos }, 0)
  end
  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or (#text + 1)
  end
  local function str()
    local parts, i = {}, pos + 1
    while true do
      local j = text:find('[%z\1-\31"\\]', i)
      if not j then
        pos = #text + 1
        fail("unterminated string")
      end
      local c = text:byte(j)
      parts[#parts + 1] = text:sub(i, j - 1)
      if c == 34 then
        pos = j + 1
        return table.concat(parts)
      elseif c ~= 92 then
        pos = j
        fail("control character in a string")
      end
      local e = text:sub(j + 1, j + 1)
      if ESCAPES[e] then
        parts[#parts + 1] = ESCAPES[e]
        i = j + 2
      elseif e == "u" then
        local hex = text:match("^%x%x%x%x", j + 2)
        if not hex then
          pos = j
          fail("bad \\u escape")
        end
        local cp = tonumber(hex, 16)
        i = j + 6
        if cp >= 0xD800 and cp <= 0xDFFF then
          local low = cp <= 0xDBFF and text:match("^\\u(%x%x%x%x)", i)
          local lo = low and tonumber(low, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then
            pos = j
            fail("lone UTF-16 surrogate in a \\u escape")
          end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          i = i + 6
        end
        parts[#parts + 1] = utf8_char(cp)
      else
        pos = j
        fail("bad escape")
      end
    end
  end
  local value
  local function container(depth, close, read_item)
    if depth > MAX_DEPTH then
      fail("nested deeper than " .. MAX_DEPTH .. " levels")
    end
    pos = pos + 1
    skip()
    if text:sub(pos, pos) == close then
      pos = pos + 1
      return
    end
    while true do
      read_item()
      skip()
      local c = text:sub(pos, pos)
      pos = pos + 1
      if c == close then
        return
      elseif c ~= "," then
        pos = pos - 1
        fail("expected ',' or '" .. close .. "'")
      end
      skip()
    end
  end
  value = function(depth)
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local object = { t = "object", keys = {}, map = {}, dups = {} }
      container(depth + 1, "}", function()
        if text:sub(pos, pos) ~= '"' then
          fail("expected a quoted field name")
        end
        local key = str()
        skip()
        if text:sub(pos, pos) ~= ":" then
          fail("expected ':'")
        end
        pos = pos + 1
        if object.map[key] then
          object.dups[key] = true
        else
          object.keys[#object.keys + 1] = key
        end
        object.map[key] = value(depth + 1)
      end)
      return object
    elseif c == "[" then
      local array = { t = "array", items = {} }
      container(depth + 1, "]", function()
        array.items[#array.items + 1] = value(depth + 1)
      end)
      return array
    elseif c == '"' then
      return { t = "string", v = str() }
    end
    local integer = text:match("^-?%d+", pos)
    if integer then
      if integer:match("^-?0%d") then
        fail("leading zero in a number")
      end
      local stop = pos + #integer
      local fraction = text:match("^%.%d+", stop)
      if fraction then
        stop = stop + #fraction
      elseif text:sub(stop, stop) == "." then
        fail("bad number")
      end
      local exponent = text:match("^[eE][-+]?%d+", stop)
      if exponent then
        stop = stop + #exponent
      elseif text:match("^[eE]", stop) then
        fail("bad number")
      end
      local raw = text:sub(pos, stop - 1)
      pos = stop
      return { t = "number", v = tonumber(raw), raw = raw }
    end
    if text:sub(pos, pos + 3) == "true" then
      pos = pos + 4
      return { t = "bool", v = true }
    elseif text:sub(pos, pos + 4) == "false" then
      pos = pos + 5
      return { t = "bool", v = false }
    end
    if text:sub(pos, pos + 3) == "null" then
      pos = pos + 4
      return { t = "null" }
    end
    fail(pos > #text and "unexpected end" or "unexpected character")
  end
  local root = value(0)
  skip()
  if pos <= #text then
    fail("text after the JSON value")
  end
  return root
end


-- Valid UTF-8, as proto3 strings must be (no overlongs, surrogates or > U+10FFFF).
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, min = 1, 0
    if c >= 0xF0 and c <= 0xF4 then
      len, min = 4, 0x10000
    elseif c >= 0xE0 then
      len, min = 3, 0x800
    elseif c >= 0xC2 and c <= 0xDF then
      len, min = 2, 0x80
    elseif c >= 0x80 then
      return false
    end
    if len > 1 then
      local cp = c % (2 ^ (7 - len))
      for k = 1, len - 1 do
        local b = s:byte(i + k)
        if not b or b < 0x80 or b > 0xBF then
          return false
        end
        cp = cp * 0x40 + (b - 0x80)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
        return false
      end
    end
    i = i + len
  end
  return true
end

local QUOTED = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local MAX_ECHO = 64 -- bytes of a client's text repeated in an error

-- A client's text, cut to MAX_ECHO bytes, to repeat it in an error.
local function clipped(s)
  return #s > MAX_ECHO and s:sub(1, MAX_ECHO) .. "..." or s
end

-- `s` as a JSON string; invalid UTF-8 from a client is defused.
local function quote(s)
  if not valid_utf8(s) then
    s = s:gsub("[\128-\255]", "?")
  end
  local escaped = s:gsub('[%z\1-\31"\\]', function(c)
    return QUOTED[c] or string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

-- The schema ---------------------------------------------------------------------------

local function decoded(text)
  local ok, tree = pcall(decode, text)
  assert(ok, "bad SCHEMA")
  return tree
end

local function plain(node)
  if node.t == "object" then
    local out = {}
    for _, k in ipairs(node.keys) do
      out[k] = plain(node.map[k])
    end
    return out
  elseif node.t == "array" then
    local out = {}
    for i, item in ipairs(node.items) do
      out[i] = plain(item)
    end
    return out
  end
  return node.v
end

local schema = plain(decoded(SCHEMA))
-- Fields by both of their JSON names (the proto name and the lowerCamel one).
for _, message in pairs(schema.messages) do
  message.by_key = {}
  for _, field in ipairs(message.fields) do
    message.by_key[field.name] = field
    message.by_key[field.json] = field
  end
end
for _, enum in pairs(schema.enums) do
  enum.known = {}
  for _, name in ipairs(enum.values) do
    enum.known[name] = true
  end
  enum.listing = table.concat(enum.values, ", ")
end

-- Values -------------------------------------------------------------------------------

local INT_LIMITS = {
  int64 = { "9223372036854775807", "9223372036854775808" },
  sint64 = { "9223372036854775807", "9223372036854775808" },
  sfixed64 = { "9223372036854775807", "9223372036854775808" },
  uint64 = { "18446744073709551615", nil },
  fixed64 = { "18446744073709551615", nil },
  int32 = { "2147483647", "2147483648" },
  sint32 = { "2147483647", "2147483648" },
  sfixed32 = { "2147483647", "2147483648" },
  uint32 = { "4294967295", nil },
  fixed32 = { "4294967295", nil },
}

-- Whether the decimal integer `digits` (sign first, if any) fits `kind`.
local function in_range(kind, digits)
  local negative = digits:sub(1, 1) == "-"
  local magnitude = (negative and digits:sub(2) or digits):gsub("^0+(%d)", "%1")
  local limit = INT_LIMITS[kind][negative and 2 or 1]
  if limit == nil then
    return magnitude == "0"
  end
  return #magnitude < #limit or (#magnitude == #limit and magnitude <= limit)
end

local function integer_problem(kind, v)
  local digits
  if v.t == "string" then
    digits = v.v:match("^-?%d+$")
  elseif v.t == "number" then
    digits = v.raw:match("^-?%d+$")
    if not digits and v.v == math.floor(v.v) and math.abs(v.v) < 2 ^ 63 then
      digits = string.format("%.0f", v.v)
    end
  end
  if not digits then
    local given = v.t == "string" and quote(clipped(v.v)) .. " is not" or "must be"
    return given .. " a whole number (a JSON number, or a string of digits)"
  elseif not in_range(kind, digits) then
    return "is out of range for " .. kind
  end
end

local FLOAT_WORDS = { NaN = true, Infinity = true, ["-Infinity"] = true }

-- What is wrong with one (non-repeated) value of `field`, or nil.
local check_object
local function value_problem(field, v, path, out)
  local kind = field.kind
  if kind == "string" then
    if v.t ~= "string" then
      return "must be a JSON string"
    elseif not valid_utf8(v.v) then
      return "must be valid UTF-8"
    end
  elseif kind == "bytes" then
    if v.t ~= "string" or not v.v:match("^[%w+/_-]*=*$") then
      return "must be base64 in a JSON string"
    end
  elseif kind == "enum" then
    local enum = schema.enums[field.type]
    if v.t == "string" then
      if not enum.known[v.v] then
        return quote(clipped(v.v)) .. " is not one of " .. enum.listing
      end
    elseif v.t ~= "number" or integer_problem("int32", v) then
      return "must be one of " .. enum.listing
    end
  elseif INT_LIMITS[kind] then
    return integer_problem(kind, v)
  elseif kind == "bool" then
    if v.t ~= "bool" and not (v.t == "string" and (v.v == "true" or v.v == "false")) then
      return "must be true or false"
    end
  elseif kind == "double" or kind == "float" then
    if v.t ~= "number" and not (v.t == "string" and (FLOAT_WORDS[v.v] or tonumber(v.v))) then
      return "must be a number"
    end
  elseif kind == "message" then
    local message = schema.messages[field.type]
    if message == nil then
      return nil -- a well-known type (Timestamp, Struct, ...): the transcoder judges it
    elseif v.t ~= "object" then
      return "must be a JSON object"
    end
    check_object(message, v, path .. ".", {}, out)
  end
end

local MAX_VIOLATIONS = 50 -- bounds the answer to a hostile body

local function add(out, field, description)
  if #out < MAX_VIOLATIONS then
    out[#out + 1] = { field = clipped(field), description = description }
  end
end

local function check_field(field, v, path, out)
  if v.t == "null" then
    return -- null means "not set" in the proto3 JSON mapping
  elseif field.repeated then
    if v.t ~= "array" then
      add(out, path, "must be a JSON array")
      return
    end
    for i, item in ipairs(v.items) do
      local at = path .. "[" .. (i - 1) .. "]"
      local problem = item.t == "null" and "must not be null" or value_problem(field, item, at, out)
      if problem then
        add(out, at, problem)
      end
    end
    return
  end
  local problem = value_problem(field, v, path, out)
  if problem then
    add(out, path, problem)
  end
end

-- `bound`: the fields the URL path sets, by proto name; the body may only repeat them.
check_object = function(message, object, prefix, bound, out)
  local seen = {}
  for _, key in ipairs(object.keys) do
    local field = message.by_key[key]
    local path = prefix .. key
    if field == nil then
      add(out, path, "unknown field; " .. message.name .. " has " .. message.listing)
    elseif seen[field.name] or object.dups[key] then
      add(out, path, "is given twice")
    else
      seen[field.name] = true
      local v = object.map[key]
      if bound[field.name] ~= nil and not (v.t == "string" and v.v == bound[field.name]) then
        add(out, path, "must match the path, which names " .. quote(clipped(bound[field.name])))
      else
        check_field(field, v, path, out)
      end
    end
  end
end

-- The URL ------------------------------------------------------------------------------

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

local function route_of(method, path)
  for _, route in ipairs(schema.routes) do
    if route.method == method then
      local captures = { path:match(route.pattern) }
      if #captures > 0 then
        local bound = {}
        for i, name in ipairs(route.variables) do
          bound[name] = unescape(captures[i])
        end
        return route, bound
      end
    end
  end
end

-- A query parameter names a field by its path ("a.b"); its value is a string.
local function check_query(route, query, bound, out)
  local message = schema.messages[route.message]
  local seen = {}
  for pair in query:gmatch("[^&]+") do
    local raw_key, raw_value = pair:match("^([^=]*)=?(.*)$")
    local key, value = unescape(raw_key), unescape(raw_value)
    local field, current = nil, message
    for part in key:gmatch("[^.]+") do
      field = current and current.by_key[part]
      current = field and field.kind == "message" and schema.messages[field.type] or nil
      if field == nil then
        break
      end
    end
    if route.body == "*" then
      add(out, key, "unknown query parameter; this request takes its fields in the JSON body")
    elseif field == nil or key:match("^%.") or key:match("%.$") or key:match("%.%.") then
      add(out, key, "unknown query parameter; " .. message.name .. " has " .. message.listing)
    elseif bound[field.name] ~= nil or field.kind == "message" then
      add(out, key, "cannot be set in the query string")
    elseif seen[field.name] and not field.repeated then
      add(out, key, "is given twice")
    else
      seen[field.name] = true
        -- A query value is text: an enum may be given by number, an integer as digits.
      local numeric_enum = field.kind == "enum" and value:match("^-?%d+$")
      local problem = not numeric_enum and value_problem(field, { t = "string", v = value }, key, out)
      if problem then
        add(out, key, problem)
      end
    end
  end
end

-- The answer ---------------------------------------------------------------------------

local function reject(handle, message, violations)
  local summary, items = {}, {}
  for _, v in ipairs(violations) do
    summary[#summary + 1] = v.field .. ": " .. v.description
    items[#items + 1] = '{"field":' .. quote(v.field) .. ',"description":' .. quote(v.description) .. "}"
  end
  local details = "[]"
  if #violations > 0 then
    message = "invalid request: " .. table.concat(summary, "; ")
    details = '[{"@type":"' .. BAD_REQUEST .. '","field_violations":[' .. table.concat(items, ",") .. "]}]"
  end
  handle:headers():add(REJECTED_HEADER, "1")
  handle:respond(
    { [":status"] = "400", ["content-type"] = "application/json" },
    '{"code":3,"message":' .. quote(message) .. ',"details":' .. details .. "}"
  )
end

function envoy_on_request(handle)
  local headers = handle:headers()
  headers:remove(REJECTED_HEADER) -- only this filter may set it
  local content_type = headers:get("content-type") or ""
  if content_type:sub(1, 16) == "application/grpc" then
    return
  end
  local full = headers:get(":path") or ""
  local path, query = full:match("^([^?]*)%??(.*)$")
  local route, bound = route_of(headers:get(":method"), path)
  if route == nil then
    return -- not a REST route: the transcoder and the router answer it
  end
  local violations = {}
  if query ~= "" then
    check_query(route, query, bound, violations)
  end
  if route.body == "*" then
    local body = handle:body()
    local text = body and body:getBytes(0, body:length()) or ""
    if text:find("[^ \t\r\n]") then
      local ok, tree = pcall(decode, text)
      if not ok then
        if type(tree) ~= "table" or tree.json == nil then
          error(tree, 0)
        end
        reject(handle, "the body is not valid JSON: " .. tree.json, {})
        return
      elseif tree.t ~= "object" then
        reject(handle, "the body must be a JSON object", {})
        return
      end
      check_object(schema.messages[route.message], tree, "", bound, violations)
    end
  end
  if #violations > 0 then
    reject(handle, "", violations)
  end
end
