-- milestones.nvim: the project's milestones in Neovim, through its
-- milestoned daemon. Speaks the daemon's JSON encoding over its Unix
-- socket with Neovim's own libuv bindings (no external program):
-- every frame is a 4-byte big-endian length and a JSON payload, the
-- first each way being the handshake (PROTOCOL.md).
--
-- :Milestones [FILTER]   the list (FILTER: PATH=VALUE, or words to search)
--   <CR>  on a milestone opens its YAML; :write saves it through the daemon
--   x     on a task marks it done
--   r     refreshes (changes from anywhere refresh it by themselves)

local uv = vim.loop
-- `counts` says how often each buffer was drawn, loaded and saved: what a
-- script (or the plugin's test) waits on.
local M = { config = {}, counts = { rendered = {}, loaded = {}, saved = {} } }

local function count(kind, buf)
  M.counts[kind][buf] = (M.counts[kind][buf] or 0) + 1
end

-- Connections ------------------------------------------------------------

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

local function socket_path()
  if M.config.socket then
    return M.config.socket
  end
  if vim.env.MILESTONES_SOCKET and vim.env.MILESTONES_SOCKET ~= "" then
    return vim.env.MILESTONES_SOCKET
  end
  local root = M.config.root or vim.env.MILESTONES_ROOT
  if not root or root == "" then
    local found = vim.fn.finddir(".milestones", vim.fn.getcwd() .. ";")
    root = found ~= "" and vim.fn.fnamemodify(found, ":p:h:h") or vim.fn.getcwd()
  end
  return root .. "/.milestones/milestoned.sock"
end

-- One connection: `on_message` gets each decoded frame after the handshake.
local function connect(on_message, on_ready)
  local pipe = uv.new_pipe(false)
  local conn = { pipe = pipe, pending = {}, next_id = 1, buffer = "", ready = false }
  local function send(message)
    local payload = vim.json.encode(message)
    pipe:write(be32(#payload) .. payload)
  end
  conn.send = send
  pipe:connect(socket_path(), function(err)
    if err then
      vim.schedule(function()
        vim.notify("milestones: cannot reach milestoned at " .. socket_path() .. ": " .. err, vim.log.levels.ERROR)
      end)
      return
    end
    pipe:read_start(function(read_err, data)
      if read_err or not data then
        pipe:close()
        return
      end
      conn.buffer = conn.buffer .. data
      while #conn.buffer >= 4 do
        local b1, b2, b3, b4 = conn.buffer:byte(1, 4)
        local length = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
        if #conn.buffer < 4 + length then
          break
        end
        local payload = conn.buffer:sub(5, 4 + length)
        conn.buffer = conn.buffer:sub(5 + length)
        local message = vim.json.decode(payload)
        vim.schedule(function()
          if not conn.ready then
            conn.ready = true
            if message.Rejected then
              vim.notify("milestones: refused: " .. message.Rejected.reason, vim.log.levels.ERROR)
            elseif on_ready then
              on_ready(conn)
            end
          else
            on_message(conn, message, payload)
          end
        end)
      end
    end)
    send({ protocol_version = 1, client_name = "milestones.nvim", client_version = "1.0", encoding = "json", capabilities = {} })
  end)
  return conn
end

local requests -- the connection for requests, made on first use

-- Sends `request`; `done(ok, result)` gets the Ok value or the error.
local function request(req, done)
  local function go(conn)
    local id = conn.next_id
    conn.next_id = id + 1
    conn.pending[id] = done
    conn.send({ id = id, request = req })
  end
  if requests and requests.ready and not requests.pipe:is_closing() then
    return go(requests)
  end
  requests = connect(function(conn, message, payload)
    local reply = message.Reply
    if reply and conn.pending[reply.id] then
      local callback = conn.pending[reply.id]
      conn.pending[reply.id] = nil
      if reply.result.Err then
        callback(false, reply.result.Err.message)
      else
        callback(true, reply.result.Ok, payload)
      end
    end
  end, go)
end

local function failed(message)
  vim.notify("milestones: " .. tostring(message), vim.log.levels.ERROR)
end

-- The list -------------------------------------------------------------

local lists = {} -- buffer -> { filter = ..., rows = { line -> {id=, task=} } }

local function query_of(filter)
  local query = { filters = {}, text = vim.NIL, sort = {}, include_archived = false, limit = vim.NIL, offset = 0 }
  if filter and filter ~= "" then
    local path, value = filter:match("^([%w_.]+)=(.*)$")
    if path then
      table.insert(query.filters, { path = path, op = "Eq", value = value })
    else
      query.text = filter
    end
  end
  return query
end

local function render_list(buf)
  local state = lists[buf]
  if not state then
    return
  end
  request({ List = { query = query_of(state.filter) } }, function(ok, result)
    if not ok then
      return failed(result)
    end
    if not vim.api.nvim_buf_is_valid(buf) then
      return
    end
    local lines, rows = {}, {}
    local function str(v)
      return type(v) == "string" and v or ""
    end
    for _, doc in ipairs(result.Page.items) do
      table.insert(lines, string.format("%-16s %-12s %-9s %s", str(doc.id), str(doc.status), str(doc.priority), str(doc.title)))
      rows[#lines] = { id = doc.id }
      for _, task in ipairs(type(doc.tasks) == "table" and doc.tasks or {}) do
        if type(task) == "table" then
          local mark = task.status == "completed" and "x" or " "
          table.insert(lines, string.format("    [%s] %s %s", mark, str(task.id), str(task.title)))
          rows[#lines] = { id = doc.id, task = task.id }
        end
      end
    end
    if #lines == 0 then
      lines = { "no milestones match" }
    end
    state.rows = rows
    vim.api.nvim_buf_set_option(buf, "modifiable", true)
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.api.nvim_buf_set_option(buf, "modifiable", false)
    count("rendered", buf)
  end)
end

local subscription -- the connection that hears every change

local function subscribe()
  if subscription then
    return
  end
  subscription = connect(function(_, message)
    if message.Event or message.Lagged then
      for buf in pairs(lists) do
        render_list(buf)
      end
    end
  end, function(conn)
    conn.send({ id = 1, request = { Subscribe = { filter = { ids = {}, statuses = {}, kinds = {} } } } })
  end)
end

local function row_under_cursor()
  local state = lists[vim.api.nvim_get_current_buf()]
  return state and state.rows[vim.api.nvim_win_get_cursor(0)[1]]
end

function M.open_list(filter)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(buf, "milestones://list" .. (filter ~= "" and ("?" .. filter) or "") .. "#" .. buf)
  vim.api.nvim_buf_set_option(buf, "filetype", "milestones")
  lists[buf] = { filter = filter, rows = {} }
  vim.api.nvim_set_current_buf(buf)
  local map = function(key, fn)
    vim.keymap.set("n", key, fn, { buffer = buf, silent = true })
  end
  map("<CR>", M.open_under_cursor)
  map("x", M.done_under_cursor)
  map("r", function()
    render_list(buf)
  end)
  vim.api.nvim_create_autocmd("BufWipeout", { buffer = buf, callback = function()
    lists[buf] = nil
  end })
  render_list(buf)
  subscribe()
  return buf
end

function M.done_under_cursor()
  local row = row_under_cursor()
  if not row or not row.task then
    return failed("put the cursor on a task")
  end
  request({ TaskSetStatus = { milestone = row.id, task = row.task, status = "completed" } }, function(ok, result)
    if not ok then
      return failed(result)
    end
  end)
end

-- One milestone as YAML --------------------------------------------------

-- JSON text to a tree that keeps the document's key order (vim.json.decode
-- gives tables, which do not): { kind = "map", keys = {...}, values = {...} }.
local function parse_ordered(text)
  local pos = 1
  local value
  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or #text + 1
  end
  local function string_token()
    local start = pos
    pos = pos + 1
    while true do
      local c = text:sub(pos, pos)
      if c == "\\" then
        pos = pos + 2
      elseif c == '"' then
        pos = pos + 1
        return vim.json.decode(text:sub(start, pos - 1))
      else
        pos = pos + 1
      end
    end
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local node = { kind = "map", keys = {}, values = {} }
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "}" then
        pos = pos + 1
        return node
      end
      while true do
        skip()
        local key = string_token()
        skip()
        pos = pos + 1 -- :
        table.insert(node.keys, key)
        table.insert(node.values, value())
        skip()
        local sep = text:sub(pos, pos)
        pos = pos + 1
        if sep == "}" then
          return node
        end
      end
    elseif c == "[" then
      local node = { kind = "list", items = {} }
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "]" then
        pos = pos + 1
        return node
      end
      while true do
        table.insert(node.items, value())
        skip()
        local sep = text:sub(pos, pos)
        pos = pos + 1
        if sep == "]" then
          return node
        end
      end
    elseif c == '"' then
      return { kind = "scalar", text = vim.json.encode(string_token()) }
    else
      local token = text:match("^[^,%]}%s]+", pos)
      pos = pos + #token
      return { kind = "scalar", text = token }
    end
  end
  return value()
end

-- Block YAML; strings as JSON strings, which YAML reads as they are.
local function to_yaml(node, indent, lines)
  local pad = string.rep("  ", indent)
  local function inline(n)
    if n.kind == "scalar" then
      return n.text
    elseif n.kind == "list" and #n.items == 0 then
      return "[]"
    elseif n.kind == "map" and #n.keys == 0 then
      return "{}"
    end
  end
  if node.kind == "map" then
    for i, key in ipairs(node.keys) do
      local v = node.values[i]
      local k = key:match("^[%w_.-]+$") and key or vim.json.encode(key)
      if inline(v) then
        table.insert(lines, pad .. k .. ": " .. inline(v))
      else
        table.insert(lines, pad .. k .. ":")
        to_yaml(v, indent + 1, lines)
      end
    end
  elseif node.kind == "list" then
    for _, item in ipairs(node.items) do
      if inline(item) then
        table.insert(lines, pad .. "- " .. inline(item))
      else
        local nested = {}
        to_yaml(item, indent + 1, nested)
        nested[1] = pad .. "- " .. nested[1]:sub(#pad + 3)
        vim.list_extend(lines, nested)
      end
    end
  end
  return lines
end

local function load_milestone(buf, id)
  request({ Get = { id = id } }, function(ok, result, payload)
    if not ok then
      return failed(result)
    end
    if not vim.api.nvim_buf_is_valid(buf) then
      return
    end
    -- From the reply's own text: {"Reply":{"id":N,"result":{"Ok":{"Document":{...}}}}}.
    local node = parse_ordered(payload)
    for _, key in ipairs({ "Reply", "result", "Ok", "Document" }) do
      for i, k in ipairs(node.keys) do
        if k == key then
          node = node.values[i]
          break
        end
      end
    end
    local lines = to_yaml(node, 0, {})
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.api.nvim_buf_set_option(buf, "modified", false)
    count("loaded", buf)
  end)
end

function M.open(id)
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_buf_set_name(buf, "milestones://" .. id .. ".yaml")
  vim.api.nvim_buf_set_option(buf, "buftype", "acwrite")
  vim.api.nvim_buf_set_option(buf, "filetype", "yaml")
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_create_autocmd("BufWriteCmd", { buffer = buf, callback = function()
    local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n") .. "\n"
    request({ Update = { id = id, change = { Replace = { Yaml = text } } } }, function(ok, result)
      if not ok then
        return failed(result)
      end
      vim.api.nvim_buf_set_option(buf, "modified", false)
      count("saved", buf)
    end)
  end })
  load_milestone(buf, id)
  return buf
end

function M.open_under_cursor()
  local row = row_under_cursor()
  if row then
    M.open(row.id)
  end
end

function M.setup(config)
  M.config = config or {}
end

return M
