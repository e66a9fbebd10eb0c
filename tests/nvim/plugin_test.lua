-- Drives milestones.nvim headless against a real daemon (tests/tests/nvim.rs
-- starts it): list, open, edit and save, an outside change, a task done.
-- Writes "ok" or the failure to $RESULT, then quits.
local ok, err = pcall(function()
  vim.cmd("runtime plugin/milestones.lua")
  local m = require("milestones")
  local msctl, root = os.getenv("MSCTL"), os.getenv("MILESTONES_ROOT")
  local function wait(what, cond)
    if not vim.wait(15000, cond, 20) then
      error("timed out waiting for " .. what)
    end
  end
  local function text(buf)
    return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
  end
  local function cursor_to(buf, pattern)
    for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
      if line:match(pattern) then
        vim.api.nvim_win_set_cursor(0, { i, 0 })
        return
      end
    end
    error("no line matches " .. pattern .. " in:\n" .. text(buf))
  end

  vim.cmd("Milestones")
  local list = vim.api.nvim_get_current_buf()
  wait("the list", function()
    return text(list):find("alpha", 1, true) ~= nil
  end)

  cursor_to(list, "^alpha ")
  m.open_under_cursor()
  local doc = vim.api.nvim_get_current_buf()
  wait("the milestone's YAML", function()
    return (m.counts.loaded[doc] or 0) > 0
  end)
  local lines = vim.api.nvim_buf_get_lines(doc, 0, -1, false)
  assert(lines[1] == 'id: "alpha"' and lines[2] == 'title: "Alpha"', "the document in its own order:\n" .. text(doc))
  for i, line in ipairs(lines) do
    if line:match("^title: ") then
      lines[i] = 'title: "Renamed in Neovim"'
    end
  end
  vim.api.nvim_buf_set_lines(doc, 0, -1, false, lines)
  vim.cmd("write")
  wait("the save", function()
    return (m.counts.saved[doc] or 0) > 0
  end)
  assert(not vim.api.nvim_buf_get_option(doc, "modified"), "saved")
  wait("the list to show the saved title", function()
    return text(list):find("Renamed in Neovim", 1, true) ~= nil
  end)

  vim.fn.system({ msctl, "--root", root, "update", "beta", "--set", "title=Changed outside" })
  assert(vim.v.shell_error == 0, "msctl update failed")
  wait("the outside change in the open list", function()
    return text(list):find("Changed outside", 1, true) ~= nil
  end)

  vim.api.nvim_set_current_buf(list)
  cursor_to(list, "%[ %] task%-1 ")
  m.done_under_cursor()
  wait("the task shown done", function()
    return text(list):find("[x] task-1", 1, true) ~= nil
  end)
end)
local out = io.open(os.getenv("RESULT"), "w")
out:write(ok and "ok" or tostring(err))
out:close()
vim.cmd("qall!")
